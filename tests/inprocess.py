"""All three tiers in one process: calls between tiers go through Django's test client instead
of the network, so the experience and web tiers run against the real entity code and the
throwaway test database. Shared by the unit tests and the fuzz and security tests."""
from contextlib import contextmanager

import httpx
from django.test import Client

from marketplace import upstream

UPSTREAMS = ("entity", "experience")


class DjangoClientTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to Django in this process."""

    def __init__(self):
        self.client = Client()

    def handle_request(self, request):
        headers = {key: value for key, value in request.headers.items()
                   if key.lower() not in ("host", "content-length")}
        response = self.client.generic(request.method, str(request.url.raw_path, "ascii"),
                                       data=request.read(),
                                       content_type=request.headers.get("content-type", ""),
                                       headers=headers)
        return httpx.Response(response.status_code, headers=dict(response.items()),
                              content=response.content)


@contextmanager
def tiers_in_process():
    """Routes the web -> experience -> entity calls in-process while the block runs."""
    for name in UPSTREAMS:
        upstream.use_transport(name, DjangoClientTransport())
    try:
        yield
    finally:
        for name in UPSTREAMS:
            upstream.use_transport(name, None)
