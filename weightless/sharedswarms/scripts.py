"""The Lua scripts of the Redis swarm store: one announce, or one swarm's counts, is one script.

Every key of a swarm carries the swarm key as its hash tag (``wl:{<40 hex>}:...``), so a
swarm's keys sit in one slot of a Redis Cluster and a script touches one node. The script is
given the prefix (KEYS[1]) and names the swarm's keys from it:

- ``a4l a4s a6l a6s`` and ``b4l b4s b6l b6s``: sorted sets of peers, scored by the second they
  last announced: the swarm's own hash (a) and its other hash (b, a hybrid entry's v1 hash),
  IPv4 and IPv6, leechers and seeders. A member is a packed address and port (6 or 18 bytes, as
  in a compact reply).
- ``xa4 xa6 xb4 xb6``: the same peers by address, all scored 0, for a range by address: the
  peers of the announcer's network (an IPv4 /24 or an IPv6 /64) without a scan.
- ``id``: a hash of peer ids by address.
- ``c``: a hash of counts: ``s`` seeders and ``l`` leechers (each peer once whichever hash it
  announced), ``d`` completed downloads, ``x`` when to look for expired peers next.

A peer announcing under both hashes of a hybrid swarm has the same state in both lists (its
last announce sets both), and is counted once. Peers not heard from for the peer TTL are
dropped by a script run on their swarm (at most every EXPIRE_EVERY seconds); every key written
gets an EXPIRE of the peer TTL, so a swarm nobody announces to goes away by itself.
"""

from __future__ import annotations

import hashlib
from struct import Struct

KEY_SUFFIXES = (
    b"a4l", b"a4s", b"a6l", b"a6s", b"b4l", b"b4s", b"b6l", b"b6s",
    b"xa4", b"xa6", b"xb4", b"xb6", b"id", b"c",
)  # fmt: skip

# peers dropped from one sorted set per pass: expiry catches up over a few passes
EXPIRE_BATCH = 128
# a swarm's expired peers are looked for at most this often (seconds; at most the peer TTL): a
# peer may outlive --peer-ttl by this much, and most announces skip eight range reads
EXPIRE_EVERY = 30

# KEYS[1] is the swarm's prefix, ``wl:{<hex>}:``; the script names its keys from it, all in
# the slot of that hash tag. ARGV[1] holds the numbers, packed (struct, big-endian).
_COMMON = """
local P = KEYS[1]
local K = {}
local names = {'a4l', 'a4s', 'a6l', 'a6s', 'b4l', 'b4s', 'b6l', 'b6s',
  'xa4', 'xa6', 'xb4', 'xb6', 'id', 'c'}
for i = 1, 14 do K[i] = P .. names[i] end
local function z(l, f, s) return K[l * 4 + f * 2 + s + 1] end
local function x(l, f) return K[9 + l * 2 + f] end
local IDS, C = K[13], K[14]
local function state(l, f, m)
  if redis.call('ZSCORE', z(l, f, 0), m) then return 1 end
  if redis.call('ZSCORE', z(l, f, 1), m) then return 2 end
  return 0
end
local function count(field, by) redis.call('HINCRBY', C, field, by) end
local function expire(now, ttl)
  local due = redis.call('HGET', C, 'x')
  if due then
    if now < tonumber(due) then return end
  elseif redis.call('EXISTS', C) == 0 then
    return  -- no swarm: nothing to expire, and no key made that nothing would expire
  end
  local step = EXPIRE_EVERY
  if step > ttl then step = ttl end
  redis.call('HSET', C, 'x', now + step)
  local cutoff = now - ttl
  for l = 0, 1 do for f = 0, 1 do for s = 0, 1 do
    local key = z(l, f, s)
    local gone = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. cutoff, 'LIMIT', 0, EXPIRE_BATCH)
    if #gone > 0 then
      if #gone == EXPIRE_BATCH then redis.call('HSET', C, 'x', now) end
      redis.call('ZREM', key, unpack(gone))
      redis.call('ZREM', x(l, f), unpack(gone))
      for _, m in ipairs(gone) do
        if state(1 - l, f, m) == 0 then
          count(s == 1 and 's' or 'l', -1)
          redis.call('HDEL', IDS, m)
        end
      end
    end
  end end end
end
""".replace("EXPIRE_BATCH", str(EXPIRE_BATCH)).replace("EXPIRE_EVERY", str(EXPIRE_EVERY))

# ARGV[1]: ANNOUNCE_ARGS packed: now, peer TTL, list (0: the swarm key, 1: the other hash),
# seeding (0/1), event (BEP 15 numbers), peers wanted, both families (0/1), peer ids wanted
# (0/1), completions known to the caller. ARGV[2]: the packed address, ARGV[3]: the peer id.
# Returns: seeders, leechers, completions, counted (0/1), the IPv4 peers and the IPv6 peers
# (packed addresses, joined: the announcer's network first), [their peer ids, 20 bytes each,
# joined in the same order].
ANNOUNCE = (
    _COMMON
    + r"""
local now, ttl, list, seeding, event, numwant, both, ids, known =
  struct.unpack('>IIBBBHBBI', ARGV[1])
local addr = ARGV[2]
expire(now, ttl)
local fam = (#addr == 18) and 1 or 0
local other = 1 - list
local here = 0
if redis.call('ZSCORE', z(list, fam, seeding), addr) then
  here = seeding + 1
elseif redis.call('ZREM', z(list, fam, 1 - seeding), addr) == 1 then
  here = 2 - seeding
end
local there = state(other, fam, addr)
local before = here
if before == 0 then before = there end
local counted = 0
local function move_there(to)
  local from = z(other, fam, there - 1)
  local score = redis.call('ZSCORE', from, addr)
  redis.call('ZREM', from, addr)
  redis.call('ZADD', z(other, fam, to), score, addr)
  redis.call('EXPIRE', z(other, fam, to), ttl)
end
if event == 3 then
  if here ~= 0 then
    redis.call('ZREM', z(list, fam, seeding), addr)
    redis.call('ZREM', x(list, fam), addr)
    if there == 0 then
      count(here == 2 and 's' or 'l', -1)
      redis.call('HDEL', IDS, addr)
    end
  end
  if seeding == 1 and there == 1 then
    move_there(1)
    count('l', -1)
    count('s', 1)
  end
  if seeding == 1 and before == 1 then counted = 1 end
else
  local key = z(list, fam, seeding)
  redis.call('ZADD', key, now, addr)
  redis.call('EXPIRE', key, ttl)
  if here == 0 then
    redis.call('ZADD', x(list, fam), 0, addr)
  end
  redis.call('EXPIRE', x(list, fam), ttl)
  redis.call('HSET', IDS, addr, ARGV[3])
  redis.call('EXPIRE', IDS, ttl)
  local want = seeding + 1
  if there ~= 0 and there ~= want then move_there(seeding) end
  if before == 0 then
    count(seeding == 1 and 's' or 'l', 1)
  elseif before ~= want then
    count(before == 2 and 's' or 'l', -1)
    count(seeding == 1 and 's' or 'l', 1)
  end
  if seeding == 1 and (before == 1 or (before == 0 and event == 1)) then counted = 1 end
end
local got = redis.call('HMGET', C, 's', 'l', 'd')
local done = tonumber(got[3] or '0')
if known > done then done = known end
done = done + counted
if done > 0 then redis.call('HSET', C, 'd', done) end
redis.call('EXPIRE', C, ttl)
local reply = {tonumber(got[1] or '0'), tonumber(got[2] or '0'), done, counted, '', ''}
if event ~= 3 and numwant > 0 then
  both = both == 1
  local seen = {[addr] = true}
  local picked = {{}, {}}  -- IPv4, IPv6
  local n = 0
  local function take(members, f)
    local into = picked[f + 1]
    for _, m in ipairs(members) do
      if n >= numwant then return end
      if not seen[m] then
        seen[m] = true
        n = n + 1
        into[#into + 1] = m
      end
    end
  end
  local width = fam == 1 and 8 or 3
  local prefix = string.sub(addr, 1, width)
  take(redis.call('ZRANGEBYLEX', x(list, fam), '[' .. prefix,
    '[' .. prefix .. string.rep('\255', #addr - width), 'LIMIT', 0, numwant + 1), fam)
  local mine = n
  local order
  if seeding == 1 then
    order = {{fam, 0}, {1 - fam, 0}, {fam, 1}, {1 - fam, 1}}
  else
    order = {{fam, 1}, {fam, 0}, {1 - fam, 1}, {1 - fam, 0}}
  end
  for _, o in ipairs(order) do
    if n >= numwant then break end
    if both or o[1] == fam then
      local key = z(list, o[1], o[2])
      if mine == 0 and (o[1] ~= fam or o[2] ~= seeding) then
        -- no neighbour drawn and the announcer is not in this set: nothing to leave out
        local got = redis.call('ZRANDMEMBER', key, numwant - n)
        local into = picked[o[1] + 1]
        for i = 1, #got do into[#into + 1] = got[i] end
        n = n + #got
      else
        -- enough for what is missing, however many of the neighbours (and the announcer
        -- itself) it draws again
        take(redis.call('ZRANDMEMBER', key, numwant - n + mine + 1), o[1])
      end
    end
  end
  reply[5] = table.concat(picked[1])
  reply[6] = table.concat(picked[2])
  if ids == 1 and n > 0 then
    local all = {}
    for _, m in ipairs(picked[1]) do all[#all + 1] = m end
    for _, m in ipairs(picked[2]) do all[#all + 1] = m end
    local found = redis.call('HMGET', IDS, unpack(all))
    for i = 1, n do found[i] = found[i] or string.rep('\0', 20) end
    reply[7] = table.concat(found)
  end
end
return reply
"""
)

# ARGV[1]: COUNTS_ARGS packed: now, peer TTL. Returns: seeders, leechers, completions.
COUNTS = (
    _COMMON
    + """
local now, ttl = struct.unpack('>II', ARGV[1])
expire(now, ttl)
local got = redis.call('HMGET', C, 's', 'l', 'd')
return {tonumber(got[1] or '0'), tonumber(got[2] or '0'), tonumber(got[3] or '0')}
"""
)


def sha1(script: str) -> bytes:
    """The name EVALSHA knows a script by."""
    return hashlib.sha1(script.encode()).hexdigest().encode()


ANNOUNCE_ARGS = Struct(">IIBBBHBBI")
COUNTS_ARGS = Struct(">II")


def swarm_prefix(key: bytes) -> bytes:
    """The prefix of every key of the swarm with this 20-byte swarm key (its hash tag)."""
    return b"wl:{" + key.hex().encode() + b"}:"


def swarm_keys(key: bytes) -> list[bytes]:
    """Every key of the swarm (what DEL takes to drop it)."""
    prefix = swarm_prefix(key)
    return [prefix + suffix for suffix in KEY_SUFFIXES]
