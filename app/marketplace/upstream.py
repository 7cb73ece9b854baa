"""Calls from one tier to the next (web -> experience -> entity) over HTTP/JSON.

One pooled keep-alive httpx.Client per upstream per process, with short timeouts: a tier that
is down or stuck becomes `Unavailable` (a 503 for our caller) within about a second instead of
a hung worker. Tests swap the transport to call the next tier in-process (`use_transport`)."""
import threading

import httpx
from django.conf import settings

from .api import ApiError


class Unavailable(Exception):
    """The upstream could not be reached, timed out, failed (5xx) or answered nonsense."""


class Reply:
    def __init__(self, status, data, headers):
        self.status, self.data, self.headers = status, data, headers


_clients = {}
_transports = {}
_lock = threading.Lock()


def use_transport(name, transport):
    """Route calls to upstream `name` through `transport` (tests); None restores the network."""
    with _lock:
        _transports[name] = transport
        client = _clients.pop(name, None)
    if client is not None:
        client.close()


def _client(name):
    client = _clients.get(name)
    if client is None:
        with _lock:
            client = _clients.get(name)
            if client is None:
                base_url, headers = _UPSTREAMS[name]()
                client = httpx.Client(
                    base_url=base_url, headers=headers, transport=_transports.get(name),
                    timeout=httpx.Timeout(settings.UPSTREAM_READ_TIMEOUT,
                                          connect=settings.UPSTREAM_CONNECT_TIMEOUT),
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=8))
                _clients[name] = client
    return client


_UPSTREAMS = {
    "entity": lambda: (settings.ENTITY_URL, {"X-Service-Token": settings.SERVICE_TOKEN}),
    "experience": lambda: (settings.EXPERIENCE_URL, {"X-Web-Tier-Token": settings.WEB_TIER_TOKEN}),
}


# A GET whose answer broke off on the way back (the instance was killed while it answered, or
# closed a pooled connection just as it was reused) is sent once more. HAProxy cannot do it:
# it retries only requests whose answer has not started. A GET changes nothing, so sending it
# again is safe; any other method is never resent, since the first one may have been carried
# out. A timeout is not resent either: the tier behind is slow, not gone.
RESENT_METHODS = frozenset({"GET", "HEAD"})
RESENT_AFTER = (httpx.RemoteProtocolError, httpx.ReadError)


def call(name, method, path, *, json=None, params=None, headers=None, slow=False,
         idempotent=False):
    """Returns the Reply of a 2xx; raises ApiError with the upstream's own error for a 4xx,
    and Unavailable for anything that says the upstream is not working. `slow` calls (those
    that hash a password) get the longer read timeout settings.UPSTREAM_SLOW_READ_TIMEOUT;
    `idempotent` marks a POST that changes nothing (a lookup with a body), resent like a GET."""
    timeout = (httpx.Timeout(settings.UPSTREAM_SLOW_READ_TIMEOUT,
                             connect=settings.UPSTREAM_CONNECT_TIMEOUT)
               if slow else httpx.USE_CLIENT_DEFAULT)
    attempts = 2 if idempotent or method.upper() in RESENT_METHODS else 1
    for attempt in range(1, attempts + 1):
        try:
            response = _client(name).request(method, path, json=json, params=params,
                                              headers=headers, timeout=timeout)
            break
        except RESENT_AFTER as error:
            if attempt < attempts:
                continue
            raise Unavailable(f"{name} tier unreachable: {type(error).__name__}") from error
        except httpx.HTTPError as error:
            raise Unavailable(f"{name} tier unreachable: {type(error).__name__}") from error
    if response.status_code >= 500:
        raise Unavailable(f"{name} tier answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as error:
        raise Unavailable(f"{name} tier answered a body that is not JSON") from error
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ApiError(response.status_code, error.get("code", "error"),
                       error.get("message", f"{name} tier refused the request"),
                       error.get("fields"))
    return Reply(response.status_code, body.get("data"), response.headers)
