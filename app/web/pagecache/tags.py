"""Tag versions: the whole vocabulary the entity tier (which bumps) and the web tier (which
checks) share. Neither side knows the other's URLs or models, only tag names (docs/api.md,
"Cache tags").

A tag's version is the value of one global clock (``pc:v1:clock``, INCR) at the moment it was
last bumped, set atomically for all the tags of one write by a Lua script. Versions drawn from
one monotonic clock, rather than a counter per tag, are what lets the store check "was any of
this page's tags bumped after I started rendering?" by comparing with the clock read before
rendering (see ``store``). They also rule out the ABA problem of per-tag counters.

The keys must never be evicted while the entries that recorded them survive: tag keys and the
clock have no TTL and entries always have one, so Redis must run with a ``volatile-*``
maxmemory-policy (or enough memory), never ``allkeys-*``."""
from redis.commands.core import Script

from . import conn

PREFIX = "pc:v1"
CLOCK = f"{PREFIX}:clock"
TAG_PREFIX = f"{PREFIX}:tag:"
EPOCH = "*"  # carried by every page: bumping it invalidates every page at once
MAX_TAGS = 32
MAX_TAG_LENGTH = 100

_BUMP = Script(None, b"""
local now = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], now) end
return now
""")


def key(tag):
    return TAG_PREFIX + tag


def parse(header):
    """The X-Cache-Tags header -> sorted, de-duplicated tags; the epoch tag is always added."""
    tags = {tag for tag in (header or "").split() if 0 < len(tag) <= MAX_TAG_LENGTH}
    if len(tags) > MAX_TAGS:
        raise ValueError(f"a page cannot depend on more than {MAX_TAGS} tags")
    tags.add(EPOCH)
    return sorted(tags)


def bump_with(client, tags):
    """Bumps `tags` in one round trip on `client`; returns the new clock value."""
    return int(_BUMP(keys=[CLOCK, *(key(tag) for tag in sorted(set(tags)))], client=client))


def bump(tags):
    """Bumps `tags` through the breaker-protected connection; raises conn.CacheDown."""
    return conn.execute(lambda client: bump_with(client, tags))


def bump_epoch(client):
    """Makes every cached page stale (not a flush: entries stay until they expire)."""
    return bump_with(client, [EPOCH])
