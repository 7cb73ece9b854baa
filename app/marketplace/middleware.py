"""Middleware shared by every tier."""
from django.conf import settings

from .errors import REASONS, is_api_path, json_error


def served_by(get_response):
    """Names the instance that answered (X-Served-By), so load-balancing is visible, and
    turns the bodiless errors Django and ninja return on API paths (405, 413, ...) into the
    JSON error shape."""
    instance = settings.INSTANCE

    def middleware(request):
        response = get_response(request)
        if (response.status_code >= 400 and is_api_path(request.path)
                and not response.get("Content-Type", "").startswith("application/json")
                and response.status_code in REASONS):
            allow = response.get("Allow")
            response = json_error(response.status_code)
            if allow:
                response["Allow"] = allow
        response["X-Served-By"] = instance
        return response

    return middleware
