"""The Lua scripts of the Redis swarm store: one announce, or one swarm's counts, is one script.

Every key of a swarm carries the swarm key as its hash tag (``wl:{<40 hex>}:...``), so a
swarm's keys sit in one slot of a Redis Cluster and a script touches one node. The script is
given the prefix (KEYS[1]) and names the swarm's keys from it:

- ``a4l a4s a6l a6s`` and ``b4l b4s b6l b6s``: sorted sets of peers, scored by the second they
  last announced: the swarm's own hash (a) and its other hash (b, a hybrid entry's v1 hash),
  IPv4 and IPv6, leechers and seeders. A member is a packed address and port (6 or 18 bytes, as
  in a compact reply).
- ``xa4l xa4s ... xb6s``: the same peers by address, all scored 0, for a range by address:
  the peers of the announcer's network (an IPv4 /24 or an IPv6 /64) without a scan.
- ``id``: a hash of peer ids by address.
- ``c``: a hash of counts: ``s`` seeders and ``l`` leechers (each peer once whichever hash it
  announced), ``d`` completed downloads, ``x`` when to look for expired peers next.
- ``f``: a sorted set of the peers whose completion was counted, by when: an event=completed
  from a peer new to the swarm counts unless its completion was counted within the peer TTL.

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
    b"xa4l", b"xa4s", b"xa6l", b"xa6s", b"xb4l", b"xb4s", b"xb6l", b"xb6s",
    b"id", b"c", b"f",
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
  'xa4l', 'xa4s', 'xa6l', 'xa6s', 'xb4l', 'xb4s', 'xb6l', 'xb6s', 'id', 'c', 'f'}
for i = 1, 19 do K[i] = P .. names[i] end
local function z(l, f, s) return K[l * 4 + f * 2 + s + 1] end
local function x(l, f, s) return K[l * 4 + f * 2 + s + 9] end
local IDS, C, F = K[17], K[18], K[19]
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
      redis.call('ZREM', x(l, f, s), unpack(gone))
      for _, m in ipairs(gone) do
        if state(1 - l, f, m) == 0 then
          count(s == 1 and 's' or 'l', -1)
          redis.call('HDEL', IDS, m)
        end
      end
    end
  end end end
  redis.call('ZREMRANGEBYSCORE', F, '-inf', '(' .. cutoff)
end
""".replace("EXPIRE_BATCH", str(EXPIRE_BATCH)).replace("EXPIRE_EVERY", str(EXPIRE_EVERY))

# ARGV[1]: ANNOUNCE_ARGS packed: now, peer TTL, list (0: the swarm key, 1: the other hash),
# seeding (0/1), event (BEP 15 numbers), peers wanted, both families (0/1), peer ids wanted
# (0/1), completions known to the caller, a random number. ARGV[2]: the packed address,
# ARGV[3]: the peer id.
# Returns: seeders, leechers, completions, counted (0/1), the IPv4 peers and the IPv6 peers
# (packed addresses, joined: the announcer's network first), [their peer ids, 20 bytes each,
# joined in the same order].
ANNOUNCE = (
    _COMMON
    + r"""
local now, ttl, list, seeding, event, numwant, both, ids, known, luck =
  struct.unpack('>IIBBBHBBII', ARGV[1])
local addr = ARGV[2]
expire(now, ttl)
local fam = (#addr == 18) and 1 or 0
local other = 1 - list
local here = 0
if redis.call('ZSCORE', z(list, fam, seeding), addr) then
  here = seeding + 1
elseif redis.call('ZREM', z(list, fam, 1 - seeding), addr) == 1 then
  here = 2 - seeding
  redis.call('ZREM', x(list, fam, 1 - seeding), addr)
end
local there = state(other, fam, addr)
local before = here
if before == 0 then before = there end
local counted = 0
local function move_there(to)
  local from = there - 1
  local score = redis.call('ZSCORE', z(other, fam, from), addr)
  redis.call('ZREM', z(other, fam, from), addr)
  redis.call('ZREM', x(other, fam, from), addr)
  redis.call('ZADD', z(other, fam, to), score, addr)
  redis.call('ZADD', x(other, fam, to), 0, addr)
  redis.call('EXPIRE', z(other, fam, to), ttl)
  redis.call('EXPIRE', x(other, fam, to), ttl)
end
if event == 3 then
  if here ~= 0 then
    redis.call('ZREM', z(list, fam, here - 1), addr)
    redis.call('ZREM', x(list, fam, here - 1), addr)
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
  if here ~= seeding + 1 then
    redis.call('ZADD', x(list, fam, seeding), 0, addr)
  end
  redis.call('EXPIRE', x(list, fam, seeding), ttl)
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
  if seeding == 1 then
    if before == 1 then
      counted = 1
    elseif before == 0 and event == 1 then
      -- a peer new to the swarm says it completed: counted, unless its completion was
      -- counted within the peer TTL (a late or repeated event after it left)
      local last = redis.call('ZSCORE', F, addr)
      if not last or tonumber(last) < now - ttl then counted = 1 end
    end
  end
end
if counted == 1 then
  redis.call('ZADD', F, now, addr)
  redis.call('EXPIRE', F, ttl)
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
  -- up to ``want`` peers of the announcer's network from an address index: all of them, or
  -- a run of consecutive ones from a random start (wrapping round), so that a large network
  -- does not hand every announcer the same few
  local function neighbours(key, lo, hi, want)
    local total = redis.call('ZLEXCOUNT', key, lo, hi)
    if total <= want then
      if total == 0 then return {} end
      return redis.call('ZRANGEBYLEX', key, lo, hi)
    end
    local first = redis.call('ZRANK', key, redis.call('ZRANGEBYLEX', key, lo, hi, 'LIMIT', 0, 1)[1])
    local start = luck % total
    local got = redis.call('ZRANGE', key, first + start, first + math.min(total, start + want) - 1)
    if start + want > total then
      local more = redis.call('ZRANGE', key, first, first + start + want - total - 1)
      for _, m in ipairs(more) do got[#got + 1] = m end
    end
    return got
  end
  -- the peers of the announcer's network (IPv4 /24, IPv6 /64), by state
  local width = fam == 1 and 8 or 3
  local prefix = string.sub(addr, 1, width)
  local lo, hi = '[' .. prefix, '[' .. prefix .. string.rep('\255', #addr - width)
  local near = {}
  local nearby = 0
  for s = 0, 1 do
    near[s] = neighbours(x(list, fam, s), lo, hi, numwant + 1)
    for _, m in ipairs(near[s]) do
      if m ~= addr then nearby = nearby + 1 end
    end
  end
  -- random peers of one set, leaving out those already taken
  local function far(f, s)
    if n >= numwant or (f ~= fam and not both) then return end
    local key = z(list, f, s)
    if nearby == 0 and (f ~= fam or s ~= seeding) then
      -- nothing taken from this set and the announcer is not in it: nothing to leave out
      local got = redis.call('ZRANDMEMBER', key, numwant - n)
      local into = picked[f + 1]
      for i = 1, #got do into[#into + 1] = got[i] end
      n = n + #got
    else
      take(redis.call('ZRANDMEMBER', key, numwant - n + nearby + 1), f)
    end
  end
  local o = 1 - fam
  if nearby == 0 then
    -- a seeder gets leechers first, a leecher seeders first
    if seeding == 1 then
      far(fam, 0) far(o, 0) far(fam, 1) far(o, 1)
    else
      far(fam, 1) far(fam, 0) far(o, 1) far(o, 0)
    end
  elseif seeding == 1 then  -- the order of the memory store (tracker/swarm.py reply_order)
    take(near[0], fam) far(fam, 0) take(near[1], fam) far(fam, 1) far(o, 0) far(o, 1)
  else
    take(near[1], fam) take(near[0], fam) far(fam, 1) far(fam, 0) far(o, 1) far(o, 0)
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


ANNOUNCE_ARGS = Struct(">IIBBBHBBII")
COUNTS_ARGS = Struct(">II")


def swarm_prefix(key: bytes) -> bytes:
    """The prefix of every key of the swarm with this 20-byte swarm key (its hash tag)."""
    return b"wl:{" + key.hex().encode() + b"}:"


def swarm_keys(key: bytes) -> list[bytes]:
    """Every key of the swarm (what DEL takes to drop it)."""
    prefix = swarm_prefix(key)
    return [prefix + suffix for suffix in KEY_SUFFIXES]
