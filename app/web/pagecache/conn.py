"""The Redis connection of the page cache: one pool per process, short timeouts, no retries and
a circuit breaker, so that a Redis that is down or slow costs a page at most one socket
timeout, and then nothing at all while the breaker is open.

Why no retries: redis-py 8 retries 3 times with backoff by default; on a dead Redis that turns
one 100 ms timeout into several, on every request. The cache is an optimisation: a failed call
means "render the page uncached", never an error for the visitor.

Breaker: after ``PAGE_CACHE_BREAKER_FAILURES`` consecutive failures it opens for
``PAGE_CACHE_BREAKER_COOLDOWN`` seconds (calls fail at once with CacheDown); then one request
is let through as a probe (half-open) and its outcome closes or reopens it. The probe may run
a recovery action first (``execute(..., on_recovery=...)``): the web tier bumps the epoch tag
there, because writes made while Redis was unreachable may not have invalidated anything."""
import os
import threading
import time

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


class CacheDown(Exception):
    """Redis cannot be used now: the call failed, timed out, or the breaker is open."""


class Breaker:
    def __init__(self, failures=3, cooldown=1.0, clock=time.monotonic):
        self.failures, self.cooldown, self.clock = failures, cooldown, clock
        self._lock = threading.Lock()
        self.consecutive = 0
        self.opened_at = None  # None: closed
        self.probe_since = None
        self.opened_count = 0

    @property
    def is_open(self):
        return self.opened_at is not None

    def admit(self):
        """'closed' (go ahead), 'probe' (go ahead: you are the half-open probe), or None."""
        if self.opened_at is None:
            return "closed"
        with self._lock:
            if self.opened_at is None:
                return "closed"
            now = self.clock()
            if now - self.opened_at < self.cooldown:
                return None
            # one probe at a time; a probe that never reported is replaced after a cooldown
            if self.probe_since is not None and now - self.probe_since < self.cooldown:
                return None
            self.probe_since = now
            return "probe"

    def success(self):
        if self.consecutive or self.opened_at is not None:
            with self._lock:
                self.consecutive = 0
                self.opened_at = self.probe_since = None

    def failure(self):
        with self._lock:
            self.consecutive += 1
            if self.opened_at is not None or self.consecutive >= self.failures:
                if self.opened_at is None:
                    self.opened_count += 1
                self.opened_at = self.clock()
                self.probe_since = None


class Direct:
    """The few commands the hot path sends (EVALSHA, SCRIPT LOAD, SET, GET), on one redis-py
    Connection per thread, without the client's per-command machinery (pool check-out and
    release, retry wrapper, observability hooks): measured here at about a third of the CPU
    of `Redis.get` per command, which is most of what a cache hit costs. It quacks enough like
    redis.Redis for redis-py's Script objects (evalsha / script_load)."""

    def __init__(self, pool):
        # the pool's settings (address, password, timeouts), outside its count of connections
        self.connection = pool.connection_class(**pool.connection_kwargs)

    def _run(self, *args):
        connection = self.connection
        try:
            connection.send_command(*args)  # connects (again) when not connected
            return connection.read_response()
        except redis.ResponseError:
            raise  # the connection is fine: Redis answered with an error
        except BaseException:
            connection.disconnect()  # a timed-out reply must not be read by the next command
            raise

    def evalsha(self, sha, numkeys, *args):
        return self._run("EVALSHA", sha, numkeys, *args)

    def script_load(self, script):
        sha = self._run("SCRIPT", "LOAD", script)
        return sha.decode() if isinstance(sha, bytes) else sha

    def set(self, name, value, nx=False, px=None):
        args = ["SET", name, value]
        if nx:
            args.append("NX")
        if px is not None:
            args += ["PX", px]
        return self._run(*args)

    def get(self, name):
        return self._run("GET", name)

    def close(self):
        self.connection.disconnect()


_state = {}
_state_lock = threading.Lock()


def _settings():
    return (settings.REDIS_URL,
            float(getattr(settings, "PAGE_CACHE_SOCKET_TIMEOUT", 0.1)),
            int(getattr(settings, "PAGE_CACHE_BREAKER_FAILURES", 3)),
            float(getattr(settings, "PAGE_CACHE_BREAKER_COOLDOWN", 1.0)))


def _current():
    """(client, breaker) for this process and these settings (tests change REDIS_URL; gunicorn
    forks workers, and a pool must never be shared across a fork)."""
    config = _settings()
    key = (os.getpid(), config)
    state = _state.get(key)
    if state is None:
        with _state_lock:
            state = _state.get(key)
            if state is None:
                url, timeout, failures, cooldown = config
                client = redis.Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 0), retry_on_timeout=False,
                    health_check_interval=0, protocol=2,
                    max_connections=int(getattr(settings, "PAGE_CACHE_MAX_CONNECTIONS", 64)))
                state = (client, Breaker(failures, cooldown), threading.local())
                _state.clear()  # an older configuration's pool is not used again
                _state[key] = state
    return state


def client():
    return _current()[0]


def breaker():
    return _current()[1]


def direct():
    """This thread's Direct connection."""
    redis_client, _, local = _current()
    handle = getattr(local, "direct", None)
    if handle is None:
        handle = local.direct = Direct(redis_client.connection_pool)
    return handle


def reset():
    """Forget pools and breaker state (tests, or after settings change)."""
    with _state_lock:
        for client_, _, _ in _state.values():
            client_.connection_pool.disconnect()
        _state.clear()


def execute(fn, on_recovery=None, full_client=False):
    """fn(client) with the breaker's protection; raises CacheDown instead of any Redis error.
    `client` is this thread's Direct connection, or the redis.Redis client with full_client
    (pipelines, HGETALL, ...). When this call is the breaker's probe, `on_recovery(client)`
    runs first and must succeed too before the breaker closes."""
    redis_client, guard, _ = _current()
    if not full_client:
        redis_client = direct()
    admitted = guard.admit()
    if admitted is None:
        raise CacheDown("circuit open")
    try:
        if admitted == "probe" and on_recovery is not None:
            on_recovery(redis_client)
        result = fn(redis_client)
    except (redis.RedisError, OSError) as error:
        guard.failure()
        raise CacheDown(f"{type(error).__name__}: {error}") from error
    guard.success()
    return result
