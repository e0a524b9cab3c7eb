"""The one error the client raises for anything a user can fix or must be told about."""

from __future__ import annotations


class ClientError(Exception):
    """A one-line reason (unknown name, unreachable tracker, bad key, disk full, bad torrent
    file...) meant for a person: the ``weightless`` command prints it on stderr and exits 1."""


class Unreachable(ClientError):
    """The tracker (its registry API) could not be reached or did not answer in time: data
    already complete in the cache can still be returned."""
