"""Helpers for tests that speak JSON to the entity and experience APIs."""
import json

from django.test import Client


class JsonClient:
    """Django's test client speaking JSON to one tier's API, with fixed headers."""

    def __init__(self, prefix, headers=None):
        self.client, self.prefix, self.headers = Client(), prefix, headers or {}

    def request(self, method, path, body=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(method, self.prefix + path, data=data,
                                   content_type="application/json",
                                   headers={**self.headers, **(headers or {})})

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


def error_of(response):
    """The error object of a JSON error answer, after checking its shape."""
    body = response.json()
    assert body["ok"] is False and set(body["error"]) >= {"code", "message"}, body
    return body["error"]
