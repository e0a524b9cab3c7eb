-- announce.lua: the HTTP half of bench/announce.py's workload, as a wrk script.
--
--   wrk -t1 -c64 -d10s -s bench/kit/announce.lua http://127.0.0.1:7070 -- /announce HASHFILE
--
-- Arguments after "--": the announce path (default /announce; a passkey path such as
-- /announce/KEY works too) and a file of info hashes, 40 hex digits a line, most popular
-- first. bench/announce.py makes that file with `udpload -D`, so the HTTP and the UDP runs
-- (and opentracker's whitelist) use one pool of hashes.
--
-- Environment, all optional:
--   HASHES=10000   how many hashes of the file to use
--   PEERS=100000   distinct peers; peer i is "-UL0001-" + i (12 digits), port 1024 + i % 64512
--   NUMWANT=50     numwant of every announce
--   ZIPF=1.0       popularity: the hash of rank r is picked with weight 1/r^ZIPF (0: uniform)
--   SEEDERS=0.10   share of peers that are seeders (left=0), fixed per peer
--   SEED=1         random stream
--   CLOSE=1        "Connection: close": one TCP connection per announce
--   CHECK=1        read every answer: failures, compact peers per answer (slower; a check)
--
-- Events, as bench/kit/udpload.c sends them: 85% none, 8% started, 2% completed, 5% stopped.
-- Prints "summary key=value ..." (and with CHECK=1 "check key=value ...") when done.

local function setting(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then return default end
  return value
end

local path_prefix, separator
local hashes, cumulative, nhashes = {}, {}, 0
local peers, numwant, seeder_share = 100000, 50, 0.10
local checking = setting("CHECK", "0") == "1"
-- per thread; read back from every thread in done()
tally = { answers = 0, failed = 0, not_compact = 0, peers = 0, empty = 0, bytes = 0 }
local all_threads = {}

-- percent-encode every byte but the unreserved ones (RFC 3986)
local function escape(raw)
  return (raw:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function unhex(hex)
  return (hex:gsub("..", function(pair) return string.char(tonumber(pair, 16)) end))
end

function setup(thread)
  all_threads[#all_threads + 1] = thread
  thread:set("thread_no", #all_threads)
end

function init(args)
  path_prefix = args[1] or "/announce"
  if path_prefix:sub(1, 1) ~= "/" then path_prefix = "/" .. path_prefix end
  separator = path_prefix:find("?", 1, true) and "&" or "?"
  local file = assert(args[2], "usage: -- PATH HASHFILE")
  local wanted = tonumber(setting("HASHES", "10000"))
  peers = tonumber(setting("PEERS", "100000"))
  numwant = tonumber(setting("NUMWANT", "50"))
  seeder_share = tonumber(setting("SEEDERS", "0.10"))
  math.randomseed(tonumber(setting("SEED", "1")) * 7919 + (thread_no or 0))
  for line in assert(io.open(file, "r"), "cannot read " .. file):lines() do
    local hex = line:match("^%s*(%x+)%s*$")
    if hex and #hex == 40 and nhashes < wanted then
      nhashes = nhashes + 1
      hashes[nhashes] = escape(unhex(hex))
    end
  end
  assert(nhashes > 0, "no info hash in " .. file)
  local exponent, total = tonumber(setting("ZIPF", "1.0")), 0
  for rank = 1, nhashes do
    total = total + rank ^ -exponent
    cumulative[rank] = total
  end
  for rank = 1, nhashes do cumulative[rank] = cumulative[rank] / total end
  cumulative[nhashes] = 1.0
  wrk.headers["Connection"] = setting("CLOSE", "0") == "1" and "close" or "keep-alive"
end

-- the rank whose cumulative weight first reaches a uniform draw
local function popular_hash()
  local draw, lo, hi = math.random(), 1, nhashes
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cumulative[mid] < draw then lo = mid + 1 else hi = mid end
  end
  return hashes[lo]
end

function request()
  local peer = math.random(0, peers - 1)
  local roll = math.random(0, 99)
  local event = ""
  if roll >= 95 then event = "&event=stopped"
  elseif roll >= 93 then event = "&event=completed"
  elseif roll >= 85 then event = "&event=started" end
  -- a seeder stays one (a multiplicative hash of its number); "completed" means left=0 too
  local seeder = (peer * 2654435761) % 1000 < seeder_share * 1000
  local left = (seeder or event == "&event=completed") and 0 or math.random(1, 1073741824)
  return wrk.format("GET", path_prefix .. separator
    .. "info_hash=" .. popular_hash()
    .. "&peer_id=-UL0001-" .. string.format("%012d", peer)
    .. "&port=" .. (1024 + peer % 64512)
    .. "&uploaded=0&downloaded=0&left=" .. left
    .. "&compact=1&numwant=" .. numwant .. event)
end

if checking then
  function response(status, headers, body)
    tally.answers = tally.answers + 1
    tally.bytes = tally.bytes + #body
    if status ~= 200 or body:find("failure reason", 1, true) then
      tally.failed = tally.failed + 1
      if tally.failed <= 3 then
        io.stderr:write("failed announce: ", status, " ", body:sub(1, 200), "\n")
      end
      return
    end
    local length = body:match("5:peers(%d+):")
    if not length then
      tally.not_compact = tally.not_compact + 1
      return
    end
    local n = math.floor(tonumber(length) / 6)
    tally.peers = tally.peers + n
    if n == 0 then tally.empty = tally.empty + 1 end
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    "summary requests=%d rps=%.0f bytes_per_answer=%.1f p50_us=%d p90_us=%d p99_us=%d "
    .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d secs=%.2f\n",
    summary.requests, summary.requests / seconds,
    summary.requests > 0 and summary.bytes / summary.requests or 0,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout, seconds))
  if checking then
    local sum = { answers = 0, failed = 0, not_compact = 0, peers = 0, empty = 0, bytes = 0 }
    for _, thread in ipairs(all_threads) do
      for key, value in pairs(thread:get("tally")) do sum[key] = sum[key] + value end
    end
    local n = math.max(sum.answers, 1)
    io.write(string.format(
      "check answers=%d failures=%d not_compact=%d mean_peers=%.2f zero_peer_pct=%.1f "
      .. "mean_body_bytes=%.1f\n",
      sum.answers, sum.failed, sum.not_compact, sum.peers / n, 100 * sum.empty / n,
      sum.bytes / n))
  end
end
