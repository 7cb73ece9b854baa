"""The one error shape of the JSON tiers: {"ok": false, "error": {"code", "message", "fields"?}}
with a 4xx (or 503 when a tier behind is down), and Django's error handlers that use it for
API paths and friendly pages for the web tier."""
from django.conf import settings
from django.http import JsonResponse

API_PREFIXES = ("/entity/", "/exp/")

REASONS = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("too_large", "The request body is too large."),
    500: ("server_error", "The server failed to handle the request."),
    503: ("unavailable", "A service this request needs is unavailable."),
}


def error_body(code, message, fields=None):
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"ok": False, "error": error}


def json_error(status, code=None, message=None, fields=None):
    default_code, default_message = REASONS.get(status, ("error", "The request failed."))
    return JsonResponse(error_body(code or default_code, message or default_message, fields),
                        status=status)


def is_api_path(path):
    return path.startswith(API_PREFIXES)


def _handler(status, template):
    def handler(request, exception=None):
        # The JSON tiers have no pages: their friendly templates link to the web tier's URLs,
        # which they cannot reverse, so rendering one there would itself fail (a 500).
        if is_api_path(request.path) or "web" not in settings.TIERS:
            return json_error(status)
        from django.shortcuts import render

        return render(request, template, {"status": status}, status=status)

    handler.__name__ = f"handler{status}"
    return handler


handler400 = _handler(400, "web/400.html")
handler403 = _handler(403, "web/403.html")
handler404 = _handler(404, "web/404.html")
handler500 = _handler(500, "web/500.html")
