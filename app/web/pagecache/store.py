"""Entries in Redis and the two Lua scripts that read and write them, each one round trip.

An entry is one hash: ``m`` meta (JSON: status, headers, created, soft expiry), ``b`` the body,
``t`` its tags (space-separated, sorted) and ``v`` the versions those tags had when it was
stored (same order). Redis expires it at TTL + grace (``PEXPIRE``); until the soft expiry
(created + TTL) it is fresh, after it it may be served STALE while one request re-renders.
JSON rather than pickle: whoever can write to Redis must not be able to run code here.

LOOKUP (one round trip): the entry's meta and body, whether every one of its tags still has
the version stored with it (``fresh``; always 1 in ttl mode), whether a render lock and a
"pass" marker exist for the key, and the clock (the C0 of a render that follows).

FINISH (one round trip) after a render: either stores the entry, or sets the pass marker (the
page was not cacheable: later requests skip the lock and the wait for a while), and releases
the caller's lock if it still holds it. In invalidate mode the store is refused when a tag's
version is above C0 (bumped since the render started: the data may predate that write) or
the clock went below C0 (Redis restarted meanwhile, so bumps may have been lost).

Both scripts also add the caller's pending hit/miss/... counts to the stats hashes, so the
counters never cost a round trip of their own.

Only the entry's key is declared in KEYS; its lock and pass keys, the clock and the tag keys
are derived inside the scripts: fine on one Redis server, not on Redis Cluster (tags and pages
would need one hash slot there)."""
import json
from dataclasses import dataclass

from redis.commands.core import Script

from .tags import CLOCK, TAG_PREFIX

_STATS = """
if #ARGV >= FIRST then
  for i = FIRST + 2, #ARGV, 2 do
    redis.call('HINCRBY', ARGV[FIRST], ARGV[i], ARGV[i + 1])
    redis.call('HINCRBY', ARGV[FIRST + 1], ARGV[i], ARGV[i + 1])
  end
end
"""
# The lock, pass marker, clock and tag keys are derived inside the scripts rather than passed:
# fewer arguments to encode on every hit.
_KEYS = f"""
local lock_key = KEYS[1] .. ':lock'
local pass_key = KEYS[1] .. ':pass'
local clock_key = '{CLOCK}'
local tag_prefix = '{TAG_PREFIX}'
"""

# KEYS: entry. ARGV: check ('1' or '0'), then optionally the two stats keys and counts.
_LOOKUP = Script(None, (_KEYS + _STATS.replace("FIRST", "2") + """
local e = redis.call('HMGET', KEYS[1], 'm', 'b', 't', 'v')
local fresh = 0
if e[1] then
  fresh = 1
  if ARGV[1] == '1' then
    local keys = {}
    for tag in string.gmatch(e[3] or '', '%S+') do keys[#keys + 1] = tag_prefix .. tag end
    local current = {}
    if #keys > 0 then
      local values = redis.call('MGET', unpack(keys))
      for i = 1, #values do current[i] = values[i] or '0' end
    end
    if table.concat(current, ' ') ~= (e[4] or '') then fresh = 0 end
  end
end
return {e[1], e[2], fresh, redis.call('EXISTS', lock_key), redis.call('EXISTS', pass_key),
        redis.call('GET', clock_key) or '0'}
""").encode())

# KEYS: entry. ARGV: check, meta ('' = not cacheable: set the pass marker), body, tags, C0,
# entry ttl ms, pass ttl ms, lock token ('' = none), then optionally stats keys and counts.
_FINISH = Script(None, (_KEYS + _STATS.replace("FIRST", "9") + """
local stored = 0
if ARGV[2] == '' then
  redis.call('SET', pass_key, '1', 'PX', ARGV[7])
else
  local ok = true
  local versions = {}
  if ARGV[1] == '1' then
    local c0 = tonumber(ARGV[5])
    if tonumber(redis.call('GET', clock_key) or '0') < c0 then ok = false end
    if ok then
      for tag in string.gmatch(ARGV[4], '%S+') do
        local v = redis.call('GET', tag_prefix .. tag) or '0'
        if tonumber(v) > c0 then ok = false break end
        versions[#versions + 1] = v
      end
    end
  end
  if ok then
    redis.call('HSET', KEYS[1], 'm', ARGV[2], 'b', ARGV[3], 't', ARGV[4],
               'v', table.concat(versions, ' '))
    redis.call('PEXPIRE', KEYS[1], ARGV[6])
    redis.call('DEL', pass_key)
    stored = 1
  else
    stored = -1
  end
end
if ARGV[8] ~= '' and redis.call('GET', lock_key) == ARGV[8] then redis.call('DEL', lock_key) end
return stored
""").encode())


@dataclass
class Found:
    meta: dict | None
    body: bytes | None
    fresh: bool
    locked: bool
    passed: bool
    clock: int

    @property
    def exists(self):
        return self.meta is not None


def lock_key(key):
    return key + ":lock"


def pass_key(key):
    return key + ":pass"


def _stats_args(stats_keys, counts):
    if not counts:
        return []
    args = list(stats_keys)
    for field, count in counts:
        args += [field, count]
    return args


def lookup(client, key, check, stats_keys=("", ""), counts=()):
    meta, body, fresh, locked, passed, clock = _LOOKUP(
        keys=[key], args=["1" if check else "0", *_stats_args(stats_keys, counts)],
        client=client)
    return Found(json.loads(meta) if meta is not None else None, body, bool(fresh),
                 bool(locked), bool(passed), int(clock))


def finish(client, key, *, check, c0, meta=None, body=b"", tags=(), ttl_ms=0, pass_ms=0,
           token="", stats_keys=("", ""), counts=()):
    """Stores the entry (meta given) or marks the key as not cacheable (meta None); releases
    the lock held with `token`. Returns 1 stored, 0 marked, -1 refused as possibly stale."""
    return int(_FINISH(
        keys=[key],
        args=["1" if check else "0",
              json.dumps(meta, separators=(",", ":")) if meta is not None else "", body,
              " ".join(tags), c0, max(1, int(ttl_ms)), max(1, int(pass_ms)), token,
              *_stats_args(stats_keys, counts)],
        client=client))


def try_lock(client, key, token, ttl_ms):
    return bool(client.set(lock_key(key), token, nx=True, px=max(1, int(ttl_ms))))
