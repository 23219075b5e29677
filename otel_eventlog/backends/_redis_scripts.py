"""The Lua scripts that keep a Redis stream an event log: ids, eviction and reads, each atomic on the server.

Two keys make one log: the stream, whose entry with id ``n`` has the stream id ``n-0``, and a hash
beside it (``<stream>:meta``) with the log's state:

- ``epoch``: the log instance. When the hash or the stream is lost (``FLUSHDB``, a deletion, a restart
  without persistence), the next script to run starts a new log with a new epoch and ids from 1.
- ``last``: the last id handed out; ``first``: the oldest id readers may see (``last + 1`` when none).
  Ids between them are resident and contiguous, so ``missed`` is exact. Entries below ``first`` may
  linger in the stream until Redis trims their whole node (``XTRIM ... MINID ~``): readers never see them.
- ``stamp``: the newest append time, so that stamps never go backwards and the oldest expired entry
  can be found by bisection; ``bytes``: the bytes appended so far, in all. Each entry keeps its
  encoded event (``e``), its stamp (``t``) and the bytes appended before it (``b``), so that what the
  resident entries weigh is ``bytes - b(first)`` and eviction by age or weight is O(log n) on the
  server, never a scan.
- ``expired``, ``overweight``, ``cleared``: what eviction by age and by weight, and ``clear``, took;
  ``cleared`` also counts entries another client removed from the stream (``XTRIM``, ``XDEL``): the
  log moves ``first`` past them and goes on.

Every script takes ``KEYS = [stream, meta, ...]`` and begins its ``ARGV`` with: an epoch to use should
a new log begin, the clock (seconds since the epoch; empty: the Redis server's own, one clock for every
writer), ``ttl_seconds`` (``-1``: none), ``max_entries``, ``max_bytes``, and the epoch, last id and
stamp the caller last saw (empty, ``0`` and empty: none). Each call evicts what those limits say is
gone before it does its work; processes that share a stream should share its limits (the smallest
wins).

A log behind what a caller saw in the same epoch went back in time: Redis restarted from an older
snapshot, or a replica that lagged was promoted. Its ``last`` is lower than the caller's, or, once a
writer that never saw the lost ids has written past them, the entry with the caller's last id has
another stamp. Its ids repeat ones readers already hold, meaning other events, so the log takes a
new epoch there (keeping its events and ids): readers start over instead of silently skipping what
the repeated ids name.
"""

from __future__ import annotations

__all__ = ["APPEND", "CLEAR", "READ"]

_PRELUDE = """
local stream, meta = KEYS[1], KEYS[2]
local clock = ARGV[2]
if clock == '' then
  local time = redis.call('TIME')
  clock = time[1] .. '.' .. string.format('%06d', tonumber(time[2]))
end
local now, ttl = tonumber(clock), tonumber(ARGV[3])
local max_entries, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local seen_epoch, seen_last, seen_stamp = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])

local function whole(x) return string.format('%.0f', x) end
local function sid(id) return whole(id) .. '-0' end

local function save(s)
  redis.call('HSET', meta, 'epoch', s.epoch, 'last', whole(s.last), 'first', whole(s.first),
    'stamp', s.stamp, 'bytes', whole(s.bytes), 'expired', whole(s.expired),
    'overweight', whole(s.overweight), 'cleared', whole(s.cleared))
end

local function id_of(entry) return tonumber(string.match(entry[1], '^%d+')) end

-- The entries this call looked at, by id (false: none), so that none is fetched twice.
local looked = {}
local function note(id, entry) looked[id] = entry or false end

-- A field of the entry with this id: 2 for its stamp, 3 for the bytes appended before it; nil when
-- another client deleted the entry, or wrote it.
local function field(id, index)
  if looked[id] == nil then note(id, redis.call('XRANGE', stream, sid(id), sid(id))[1]) end
  local entry = looked[id]
  if entry and entry[2][index * 2 - 1] == (index == 2 and 't' or 'b') then
    return tonumber(entry[2][index * 2])
  end
  return nil
end

-- Whether the log is behind what the caller saw of it: its last id lower, or the entry with the last
-- id the caller saw stamped otherwise (written again, after a restore, by a writer that never saw it).
local function back_in_time(s)
  if s.last < seen_last then return true end
  local stamp = seen_last >= s.first and seen_stamp and field(seen_last, 2)
  return stamp and stamp ~= seen_stamp or false
end

-- Refuse to go on: the keys hold what another application wrote.
local function foreign(what)
  error({err = 'FOREIGN ' .. what .. ': give the event log a stream of its own'})
end

local function state()
  local m = redis.call('HMGET', meta, 'epoch', 'last', 'first', 'stamp', 'bytes', 'expired',
    'overweight', 'cleared')
  local fields = {'epoch', 'last', 'first', 'stamp', 'bytes', 'expired', 'overweight', 'cleared'}
  for i = 2, #fields do
    if m[1] and not tonumber(m[i]) then
      error({err = 'DAMAGED ' .. meta .. ' holds no number under ' .. fields[i] .. ': delete ' .. meta ..
        ' and ' .. stream .. ' to begin a new log'})
    end
  end
  if m[1] and (m[2] == '0' or redis.call('EXISTS', stream) == 1) then
    local s = {epoch = m[1], last = tonumber(m[2]), first = tonumber(m[3]), stamp = m[4],
      bytes = tonumber(m[5]), expired = tonumber(m[6]), overweight = tonumber(m[7]),
      cleared = tonumber(m[8])}
    if s.epoch == seen_epoch and back_in_time(s) then
      s.epoch = ARGV[1]
      redis.call('HSET', meta, 'epoch', s.epoch)
    end
    return s
  end
  -- The log was lost, or never was: a new one begins, and whatever is left of the old one goes, if
  -- it is what a log leaves: keys another application holds under these names are never deleted.
  if redis.call('TYPE', meta).ok ~= 'none' and not m[1] then
    foreign(meta .. ' is not the state of an event log')
  end
  local kind = redis.call('TYPE', stream).ok
  if kind ~= 'none' then
    local oldest = kind == 'stream' and redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
    if kind ~= 'stream' or (oldest and oldest[2][1] ~= 'e') then
      foreign(stream .. ' holds what an event log did not write')
    end
  end
  redis.call('DEL', stream, meta)
  local s = {epoch = ARGV[1], last = 0, first = 1, stamp = '0', bytes = 0, expired = 0,
    overweight = 0, cleared = 0}
  save(s)
  return s
end

-- The least id from lo to hi for which gone(id) is false, gone being true up to some id, then false.
local function first_kept(lo, hi, gone)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if gone(mid) then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Move first past the oldest entries another client removed (XTRIM, XDEL), counted as cleared.
local function skip_removed(s)
  if s.first > s.last then return end
  local oldest = redis.call('XRANGE', stream, sid(s.first), sid(s.last), 'COUNT', 1)[1]
  local first = oldest and id_of(oldest) or s.last + 1
  if oldest then note(first, oldest) end
  s.cleared = s.cleared + first - s.first
  s.first = first
end

-- Evict by the limits, once: the oldest beyond max_entries, those older than ttl (an age greater
-- than ttl), and the oldest beyond max_bytes, always keeping the newest. An entry another client
-- deleted counts as kept here (and one among those evicted is counted with them).
local function evict(s)
  local first, last = s.first, s.last
  if last - first + 1 > max_entries then first = last - max_entries + 1 end
  if ttl >= 0 and first <= last then
    local function expired(id)
      local stamp = id <= last and field(id, 2)
      return stamp and now - stamp > ttl or false
    end
    if expired(first) then
      local kept = first_kept(first + 1, last + 1, expired)
      s.expired = s.expired + kept - first
      first = kept
    end
  end
  if first < last then
    local function heavy(id)
      local before = field(id, 3)
      return before and s.bytes - before > max_bytes or false
    end
    if heavy(first) then
      local kept = first_kept(first + 1, last, heavy)
      s.overweight = s.overweight + kept - first
      first = kept
    end
  end
  s.first = first
end

-- Evict what the limits say is gone, and move past what another client removed, until the oldest
-- entry left is one to keep.
local function sweep(s)
  local start, before = s.first, nil
  repeat
    before = s.first
    skip_removed(s)
    evict(s)
  until s.first == before
  if s.first ~= start then
    redis.call('HSET', meta, 'first', whole(s.first), 'expired', whole(s.expired),
      'overweight', whole(s.overweight), 'cleared', whole(s.cleared))
    redis.call('XTRIM', stream, 'MINID', '~', sid(s.first))
    -- Whole nodes only, and a node's size has no bound when stream-node-max-bytes and -entries are
    -- both 0: then the evicted entries go one by one.
    if redis.call('XLEN', stream) > 2 * (s.last - s.first + 1) + 1000 then
      redis.call('XTRIM', stream, 'MINID', sid(s.first))
    end
  end
end

local function resident_bytes(s)
  if s.first > s.last then return 0 end
  return s.bytes - (field(s.first, 3) or s.bytes)
end
"""

#: Append events. ``KEYS[3]``: the writer's key; ``ARGV[9]``: the batch's number for that writer;
#: ``ARGV[10]``: the events' encodings, one per line (JSON text holds no raw newline). A batch sent
#: again after its answer was lost (a timeout) is recognised by its writer's key, which keeps the last
#: batch's number for a day, and is not stored twice. Returns the epoch, the id of the first event,
#: and the events' stamp.
APPEND = (
    _PRELUDE
    + """
local done = redis.call('GET', KEYS[3])
if done then
  local number, done_first, done_stamp, done_epoch = string.match(done, '^(%d+) (%d+) (%S+) (.+)$')
  if number == ARGV[9] then return {done_epoch, tonumber(done_first), done_stamp} end
end
local s = state()
local stamp = clock
if tonumber(s.stamp) > now then stamp = s.stamp end
local first_new, id, bytes = s.last + 1, s.last, s.bytes
local data, position = ARGV[10], 1
while position <= #data do
  local stop = string.find(data, '\\n', position, true) or (#data + 1)
  id = id + 1
  local added = redis.pcall('XADD', stream, sid(id), 'e', string.sub(data, position, stop - 1),
    't', stamp, 'b', whole(bytes))
  if type(added) == 'table' and added.err then
    local info = redis.call('XINFO', 'STREAM', stream)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' and tonumber(string.match(info[i + 1], '^%d+')) >= id then
        foreign('another client added an entry to ' .. stream .. ' (' .. info[i + 1] ..
          ', after the last id of the log, ' .. whole(s.last) .. ')')
      end
    end
    return added
  end
  bytes = bytes + stop - position
  position = stop + 1
end
s.last, s.bytes, s.stamp = id, bytes, stamp
redis.call('HSET', meta, 'last', whole(id), 'bytes', whole(bytes), 'stamp', stamp)
sweep(s)
redis.call('SET', KEYS[3], ARGV[9] .. ' ' .. whole(first_new) .. ' ' .. stamp .. ' ' .. s.epoch, 'EX', 86400)
return {s.epoch, first_new, stamp}
"""
)

#: Read events. ``ARGV[9]``: the reader's cursor (``-1``: none); ``ARGV[10]``: the most events to return
#: (``-1``: all). Returns the epoch, the last id and its stamp, the first resident id, the resident
#: bytes and the counters ``expired``, ``overweight`` and ``cleared``, then each event's stream id and
#: encoding.
READ = (
    _PRELUDE
    + """
local s = state()
sweep(s)
local since, count = tonumber(ARGV[9]), tonumber(ARGV[10])
local reply = {s.epoch, s.last, s.stamp, s.first, resident_bytes(s), s.expired, s.overweight, s.cleared}
local start = math.max(s.first, since + 1)
if count ~= 0 and start <= s.last then
  local entries
  if count > 0 then
    entries = redis.call('XRANGE', stream, sid(start), sid(s.last), 'COUNT', count)
  else
    entries = redis.call('XRANGE', stream, sid(start), sid(s.last))
  end
  for _, entry in ipairs(entries) do
    reply[#reply + 1] = entry[1]
    reply[#reply + 1] = entry[2][2]
  end
end
return reply
"""
)

#: Drop every resident event; ids go on. Returns the epoch.
CLEAR = (
    _PRELUDE
    + """
local s = state()
sweep(s)
s.cleared = s.cleared + s.last - s.first + 1
s.first = s.last + 1
redis.call('HSET', meta, 'first', whole(s.first), 'cleared', whole(s.cleared))
redis.call('XTRIM', stream, 'MINID', sid(s.first))
return s.epoch
"""
)
