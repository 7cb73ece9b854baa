"""The django baseline mode: Django's own per-site cache middleware with its Redis backend,
as configured by settings when LAB_CACHE_MODE=django."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from entity.models import Authenticator

APP = Path(__file__).resolve().parents[4] / "app"


@pytest.fixture
def django_mode(settings, page_cache):
    middleware = [name for name in settings.MIDDLEWARE
                  if name != "web.pagecache.middleware.PageCacheMiddleware"]
    after = middleware.index("marketplace.middleware.served_by") + 1
    middleware[after:after] = ["web.pagecache.middleware.DjangoModeStatus",
                               "django.middleware.cache.UpdateCacheMiddleware",
                               "web.pagecache.middleware.DjangoVaryOnCookie"]
    middleware.append("django.middleware.cache.FetchFromCacheMiddleware")
    settings.MIDDLEWARE = middleware
    settings.CACHE_MODE = "django"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": page_cache.url, "KEY_PREFIX": "pc-django"}}
    settings.CACHE_MIDDLEWARE_SECONDS = 300
    settings.CACHE_MIDDLEWARE_KEY_PREFIX = "page"
    return page_cache


def middleware_of_a_web_instance(mode, tmp_path):
    """MIDDLEWARE as the settings module builds it for a web instance started in `mode`."""
    env = {**os.environ, "LAB_TIER": "web", "LAB_CACHE_MODE": mode,
           "LAB_SECRETS_DIR": str(tmp_path)}
    code = "import json, marketplace.settings as s; print(json.dumps([s.MIDDLEWARE, " \
           "getattr(s, 'CACHES', {}), getattr(s, 'CACHE_MIDDLEWARE_SECONDS', None)]))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=APP, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("mode", ["off", "ttl", "invalidate"])
def test_our_middleware_is_outermost_of_the_web_middleware(mode, tmp_path):
    middleware, caches, _ = middleware_of_a_web_instance(mode, tmp_path)
    assert middleware[:2] == ["marketplace.middleware.served_by",
                              "web.pagecache.middleware.PageCacheMiddleware"]
    assert "django.middleware.cache.FetchFromCacheMiddleware" not in middleware
    assert not caches


def test_django_mode_puts_djangos_cache_middleware_in_the_documented_order(tmp_path):
    middleware, caches, seconds = middleware_of_a_web_instance("django", tmp_path)
    assert middleware[:4] == ["marketplace.middleware.served_by",
                              "web.pagecache.middleware.DjangoModeStatus",
                              "django.middleware.cache.UpdateCacheMiddleware",
                              "web.pagecache.middleware.DjangoVaryOnCookie"]
    assert middleware[-1] == "django.middleware.cache.FetchFromCacheMiddleware"
    assert "web.pagecache.middleware.PageCacheMiddleware" not in middleware
    assert caches["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert seconds == 300


def test_django_mode_serves_the_second_request_from_redis(django_mode, listing):
    browser = Client()
    first, second = browser.get("/"), browser.get("/")
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert first.content == second.content
    assert any(key.startswith(b"pc-django:") for key in django_mode.client().scan_iter())


def test_django_mode_never_serves_the_anonymous_page_to_a_logged_in_visitor(django_mode,
                                                                            listing):
    anonymous = Client()
    anonymous.get("/")
    anonymous.get("/")
    ada = Client()
    _, token = Authenticator.issue(listing.seller)
    ada.cookies[django_settings.AUTH_COOKIE_NAME] = token
    page = ada.get("/")
    assert "Hi, Ada Lovelace" in page.content.decode()
    assert "Hi, Ada" not in anonymous.get("/").content.decode()
