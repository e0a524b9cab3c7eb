"""Numbers that both the HTTP and the UDP codecs, the tracker, the state files, the registry and
the .torrent parser agree on. Pure constants, nothing to import.

- ``INT64_MAX``: the largest signed 64-bit integer, what a client's counter and a database
  BIGINT column hold. Announce counters and stored totals saturate at it; a file length or a
  piece length above it is refused.
- ``EVENT_*``: announce events with BEP 15's numbering (none, completed, started, stopped);
  the HTTP codec also reads BEP 21's ``paused``, which the UDP packet has no number for.
"""

from __future__ import annotations

INT64_MAX = (1 << 63) - 1

EVENT_NONE = 0
EVENT_COMPLETED = 1
EVENT_STARTED = 2
EVENT_STOPPED = 3
EVENT_PAUSED = 4  # BEP 21: a partial seed; treated as a regular announce (HTTP only)
