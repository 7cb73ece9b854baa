"""Invalidation of cached pages on every write, owned by the tier that commits the write.

Signal handlers on post_save / post_delete of User and Listing name the tags the write affects
(docs/api.md, "Cache tags") and bump their versions in Redis (web.pagecache.tags), so writes
from any path (the API, a management command, the shell, an admin) invalidate, and the entity
tier never knows a page URL. Only in CACHE_MODE ``invalidate``: the other modes have no use
for tags, and with ``off`` there may be no Redis at all.

When: after the commit, before the write's response. Bumping inside the transaction would let
a page be rendered from the not-yet-committed old data and stored with the new versions
(stale until its TTL). ``transaction.on_commit`` runs its callback right after the outermost
commit, synchronously, in the thread that committed, so still before the view returns; in
autocommit mode (no atomic block) it runs at once. A rolled-back write bumps nothing, except
that tags already collected for it may ride along with the next commit (a harmless extra
bump). Tags of one transaction are bumped together in one round trip.

A listing's old seller is looked up before a save that may move it (pre_save), so the old
seller's page is invalidated too. Queryset ``update()`` and ``bulk_create`` send no signals:
the only ``update()`` here is the view counter, which is not content (docs/api.md); a bulk
loader such as the seed must call ``invalidate_everything()`` when it is done.

Redis down or slow at bump time: the write still succeeds (100 ms timeouts, the breaker, every
error caught and logged). A failed bump is tried once more at once (a connection Redis dropped
when it restarted fails its first command, and the pool then opens a new one). The lost bump is not retried tag by tag: the process remembers it
and, from a background thread that retries with backoff (and before its next bump), bumps the
epoch tag that every page carries, i.e. every cached page becomes stale once, as soon as Redis
answers again. The web tier does the same when its own breaker closes. The window in which a
stale page can be served is therefore: while Redis is reachable from the web tier but not from
the entity tier (rare on one machine), and at worst the TTL bounds it."""
import logging
import threading

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from web.pagecache import conn, tags

log = logging.getLogger(__name__)

_local = threading.local()
_lost_lock = threading.Lock()
# Failed bumps so far, and how many of them an epoch bump that started after them has covered.
_failures = 0
_covered = 0
_retry_lock = threading.Lock()
_retry_thread = None
_stop = threading.Event()
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)


def active():
    return settings.CACHE_MODE == "invalidate"


def listing_tags(listing, old_seller_id=None):
    names = {"listings", f"listing:{listing.pk}", f"seller:{listing.seller_id}"}
    if old_seller_id is not None and old_seller_id != listing.seller_id:
        names.add(f"seller:{old_seller_id}")
    return names


def user_tags(user):
    return {"listings", f"user:{user.pk}"}


# --- signal handlers --------------------------------------------------------------------------

def remember_old_seller(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    if not active() or raw or instance.pk is None:
        return
    if update_fields is not None and "seller" not in update_fields \
            and "seller_id" not in update_fields:
        return
    instance._invalidation_old_seller_id = (
        sender._default_manager.using(using).filter(pk=instance.pk)
        .values_list("seller_id", flat=True).first())


def listing_changed(sender, instance, using=None, raw=False, **kwargs):
    if active() and not raw:
        schedule(listing_tags(instance, getattr(instance, "_invalidation_old_seller_id", None)),
                 using)


def user_changed(sender, instance, using=None, raw=False, **kwargs):
    if active() and not raw:
        schedule(user_tags(instance), using)


def connect():
    """Called from EntityConfig.ready()."""
    from .models import Listing, User

    pre_save.connect(remember_old_seller, sender=Listing, dispatch_uid="invalidation-pre-listing")
    post_save.connect(listing_changed, sender=Listing, dispatch_uid="invalidation-save-listing")
    post_delete.connect(listing_changed, sender=Listing, dispatch_uid="invalidation-del-listing")
    post_save.connect(user_changed, sender=User, dispatch_uid="invalidation-save-user")
    post_delete.connect(user_changed, sender=User, dispatch_uid="invalidation-del-user")


# --- bumping ----------------------------------------------------------------------------------

def _pending():
    pending = getattr(_local, "pending", None)
    if pending is None:
        pending = _local.pending = set()
    return pending


def schedule(names, using=None):
    """Bumps `names` right after the current transaction commits (at once in autocommit)."""
    _pending().update(names)
    transaction.on_commit(flush, using=using)


def flush():
    """on_commit callback: bumps every tag collected in this thread. Never raises: a write
    that committed must not fail because the cache could not be told."""
    names = _pending()
    if not names:
        return  # an earlier callback of the same commit already bumped them
    batch = set(names)
    names.clear()
    try:
        bump(batch)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("page cache invalidation failed")


def lost_bumps():
    """Failed bumps not yet covered by an epoch bump."""
    return _failures - _covered


def _epoch_bumped(failures_before):
    global _covered
    with _lost_lock:
        _covered = max(_covered, failures_before)


def bump(names):
    """Bumps `names` now; on failure remembers that the epoch must be bumped, and retries."""
    global _failures
    names = set(names)
    failures = _failures  # an epoch bump from now on covers the failures seen so far
    if failures > _covered:
        names.add(tags.EPOCH)
    try:
        try:
            tags.bump(names)
        except conn.CacheDown:
            # once more at once, on a new connection: a Redis restart leaves every pooled
            # connection broken, and the first command on one fails though Redis is back
            tags.bump(names)
    except conn.CacheDown as error:
        log.warning("could not invalidate %s (%s): every page will be invalidated when Redis "
                    "answers again", " ".join(sorted(names)), error)
        with _lost_lock:
            _failures += 1
        _start_retry()
        return False
    if tags.EPOCH in names:
        _epoch_bumped(failures)
    return True


def invalidate_everything():
    """Makes every cached page stale (after a bulk load that sent no signals)."""
    return bump({tags.EPOCH})


def _start_retry():
    global _retry_thread
    with _retry_lock:
        if _retry_thread is None:
            _stop.clear()
            _retry_thread = threading.Thread(target=_retry, name="cache-invalidation-retry",
                                             daemon=True)
            _retry_thread.start()


def _retry():
    global _retry_thread
    attempt = 0
    while not _stop.is_set():
        with _retry_lock:  # decided under the lock, so a new failure starts a new thread
            if lost_bumps() <= 0:
                _retry_thread = None
                return
        if _stop.wait(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]):
            break
        attempt += 1
        failures = _failures
        try:
            tags.bump({tags.EPOCH})
        except conn.CacheDown:
            continue
        _epoch_bumped(failures)
        log.warning("page cache: Redis answers again; every cached page was invalidated")
    with _retry_lock:
        _retry_thread = None


def stop_retry():
    """Stops the retry thread (tests)."""
    thread = _retry_thread
    _stop.set()
    if thread is not None:
        thread.join(timeout=5)
