"""What the two JSON tiers share: a NinjaAPI factory whose every error has the one error shape,
an exception services raise for expected failures, and the success envelope."""
from typing import Literal

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import create_model

from .errors import REASONS, error_body


class ApiError(Exception):
    """An expected failure a service reports to its caller: a 4xx (or 503) with a code."""

    def __init__(self, status, code, message, fields=None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def ok(data):
    return {"ok": True, "data": data}


_envelopes = {}


def envelope(schema):
    """The response schema {"ok": true, "data": <schema>} for the OpenAPI document."""
    if schema not in _envelopes:
        name = getattr(schema, "__name__", "Data") + "Envelope"
        _envelopes[schema] = create_model(name, __base__=Schema,
                                          ok=(Literal[True], True), data=(schema, ...))
    return _envelopes[schema]


class ErrorDetail(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] | None = None


class ErrorEnvelope(Schema):
    ok: Literal[False] = False
    error: ErrorDetail


def field_errors(errors):
    """pydantic/ninja error list -> {"field": ["message", ...]}; the location's leading parts
    (body/query/path and the parameter name) are not a field a user typed."""
    fields = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc[:1] == ["body"]:
            loc = loc[2:]  # ("body", <parameter name>, field, ...)
        elif loc[:1] in (["query"], ["path"]):
            loc = loc[1:]
        name = ".".join(loc) or "__all__"
        message = error.get("msg", "Invalid value.").removeprefix("Value error, ")
        fields.setdefault(name, []).append(message)
    return fields


def make_api(title, namespace, description="", auth=None):
    api = NinjaAPI(title=title, version="1.0", description=description, urls_namespace=namespace,
                   auth=auth, docs_url="docs")

    def respond(request, status, code, message, fields=None):
        return api.create_response(request, error_body(code, message, fields), status=status)

    @api.exception_handler(ApiError)
    def api_error(request, exc):
        return respond(request, exc.status, exc.code, exc.message, exc.fields)

    @api.exception_handler(ValidationError)
    def validation_error(request, exc):
        return respond(request, 422, "invalid", "Some fields are missing or invalid.",
                       field_errors(exc.errors))

    @api.exception_handler(AuthenticationError)
    def authentication_error(request, exc):
        return respond(request, 401, "unauthorized", "A valid credential is required.")

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        code = REASONS.get(exc.status_code, ("error",))[0]
        return respond(request, exc.status_code, code, str(exc.message))

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, "not_found", "No such resource.")

    @api.exception_handler(RequestDataTooBig)
    def too_big(request, exc):
        return respond(request, 413, "too_large", "The request body is too large.")

    return api


ERRORS = {400: ErrorEnvelope, 401: ErrorEnvelope, 403: ErrorEnvelope, 404: ErrorEnvelope,
          409: ErrorEnvelope, 413: ErrorEnvelope, 422: ErrorEnvelope, 503: ErrorEnvelope}
