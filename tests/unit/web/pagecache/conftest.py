"""The page cache is tested against a real redis-server: one per test session, on a free port,
in a temporary directory, without persistence and with a password; tests may stop it (to see
the site survive) and start it again. It is stopped by its pid when the session ends."""
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
from django.test import Client

from entity import invalidation
from web.pagecache import conn, stats

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="lab-test-redis-"))
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self):
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def start(self):
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--requirepass", self.password, "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             # tag keys have no TTL and page entries always have one: under memory pressure
             # only entries may go (see web.pagecache.tags)
             "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru",
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not ready in {timeout}s: {self.log()}")
            finally:
                client.close()
            time.sleep(0.01)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log(self):
        path = self.folder / "redis.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def page_cache(settings, redis_server):
    """The page cache in `invalidate` mode against the test Redis, emptied; the fixture's value
    is the RedisServer (tests use .client(), .stop(), .start())."""
    redis_server.start()
    settings.CACHE_MODE = "invalidate"
    settings.REDIS_URL = redis_server.url
    settings.CACHE_TTL = 300
    settings.PAGE_CACHE_BREAKER_COOLDOWN = 0.2
    # A loaded test machine can take more than the production 100 ms to answer; tests of a
    # slow Redis set the production value themselves.
    settings.PAGE_CACHE_SOCKET_TIMEOUT = 2.0
    settings.INSTANCE = "web-test"
    client = redis_server.client()
    client.flushall()
    client.close()
    conn.reset()
    stats.reset_process()
    yield redis_server
    invalidation.stop_retry()
    invalidation._covered = invalidation._failures  # what one test lost is not the next's
    redis_server.start()
    conn.reset()
    stats.reset_process()


@pytest.fixture
def anonymous():
    """A fresh browser; it loads the middleware with the settings of the moment."""
    return Client()
