"""Unit tests run all three tiers in one process: calls between tiers go through Django's test
client instead of the network, so the experience and web tiers are tested against the real
entity code and the throwaway test database."""
import httpx
import pytest
from django.test import Client

from marketplace import upstream


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


@pytest.fixture(autouse=True)
def tiers_in_process(db):
    for name in ("entity", "experience"):
        upstream.use_transport(name, DjangoClientTransport())
    yield
    for name in ("entity", "experience"):
        upstream.use_transport(name, None)
