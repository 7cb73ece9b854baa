"""Whole-page caching of the web tier in Redis, with redis-py called directly (issue 4).

Modes (settings.CACHE_MODE, from LAB_CACHE_MODE when the stack starts):

- ``off``: nothing is cached; pages carry ``X-Cache: BYPASS`` and a Server-Timing header.
- ``ttl``: pages are cached for CACHE_TTL seconds; writes are not seen before expiry.
- ``invalidate``: the full design below: TTL as a safety net, tag versions for freshness.
- ``django``: Django's own UpdateCacheMiddleware/FetchFromCacheMiddleware with its Redis
  backend, the baseline a user would pick instead (configured in settings, see
  ``middleware.DjangoModeStatus``).

What is stored (``policy``): 200 answers to anonymous GETs of web pages that set no cookie,
are not ``Cache-Control: private/no-store/no-cache`` and do not vary on Cookie (a page that
used a CSRF token does). A request carrying the auth cookie (or a pending flash message)
never reads or writes the shared cache.

Keys (``keys``): ``pc:v1:<mode>:GET:<path>?<params>`` where only the query parameters the
page uses are kept (per URL name: home none, search q and page, seller page, listing none),
sorted; long keys are hashed. HEAD is answered from the GET entry.

Entries (``store``): one Redis hash per page: meta (status, headers, created, soft expiry),
body, its tags and the versions those tags had. Redis expires the hash at TTL + grace.

Tags (``tags``): ``pc:v1:tag:<name>`` holds the value of a global clock (``pc:v1:clock``,
INCR) at the tag's last bump; the entity tier bumps them after each commit
(``entity.invalidation``) and never knows a page URL. Every page also carries the epoch tag
``*``, bumped when an invalidation may have been lost while Redis was unreachable.

Lookup is one round trip (a Lua script): the entry, whether its tag versions are all still
current, whether a render lock or a "pass" marker exists, and the clock. A page is served
as a HIT only when its versions are current and its soft expiry has not passed.

Freshness proof: the clock is read before rendering (C0, from the lookup); the store script
refuses the entry if any of its tags was bumped after C0 (version > C0), since the data may
predate that write, and stores the versions it read otherwise, atomically. A bump after the
store changes a version, so the entry is stale from then on. The entity tier bumps after the
commit and before the write's response, hence no page rendered from data older than a write
is ever served after that write returned.

Stampede (``middleware``): when an entry is expired by time only (versions current), one
request takes a short lock (SET NX PX) and renders; the others get the old copy with
``X-Cache: STALE`` within the grace window. When an entry was invalidated by a tag bump (or is
missing), the old copy is never served: the others poll briefly for the renderer's entry and
render themselves if it does not come. Pages found uncacheable leave a short "pass" marker so
later requests skip the lock and the wait.

Redis failing (``conn``): 100 ms socket timeouts, no retries, and a per-process circuit
breaker; while it is open, pages are rendered uncached (``X-Cache: BYPASS``). When it closes
again the web tier bumps the epoch, since writes in the meantime may not have invalidated.

Observability (``stats``): ``X-Cache``, ``Server-Timing`` (cache lookup, experience call,
render) and hit/miss/stale/bypass counters in the Redis hash ``pc:v1:stats:<mode>`` (all
instances summed) and ``pc:v1:stats:<mode>:<instance>``, also answered at ``/cache/stats``.

Fast path (``wsgi``, optional): a WSGI wrapper in front of Django that answers plain hits
itself (same key, script and counters) and hands everything else to Django with its lookup
attached; it takes effect when the web tier's WSGI module wraps its application.

Redis connections: hits use one redis-py Connection per thread (``conn.Direct``) rather than
the client, whose per-command machinery cost about three times the CPU.

This package's ``__init__`` imports nothing, so that the entity tier can use ``tags`` and
``conn`` without loading the web tier.
"""
