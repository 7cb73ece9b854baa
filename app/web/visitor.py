"""Who is visiting: the authenticator cookie, the logged-in user behind it (asked of the
experience tier, only when the cookie exists), and the middleware that keeps pages for
logged-in users out of shared caches and turns upstream failures into friendly pages."""
import logging
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.dateparse import parse_datetime
from django.utils.functional import SimpleLazyObject
from django.utils.http import url_has_allowed_host_and_scheme

from marketplace import errors
from marketplace.api import ApiError
from marketplace.upstream import Unavailable

from . import experience

log = logging.getLogger(__name__)


def token(request):
    return request.COOKIES.get(settings.AUTH_COOKIE_NAME) or None


def account(request):
    """The logged-in user (the experience tier's User dict), or None for an anonymous visitor.
    Asked once per request; raises Unavailable when the experience tier is down."""
    if not hasattr(request, "_web_account"):
        user, failure = None, None
        bearer = token(request)
        if bearer:
            try:
                user = experience.me(bearer).data["user"]
            except ApiError as error:
                # unknown, expired or revoked: anonymous, and the cookie goes (see finish)
                request._web_stale_token = error.status == 401
            except Unavailable as error:
                failure = error
        request._web_account = (user, failure)
    user, failure = request._web_account
    if failure is not None:
        raise failure
    return user


def _account_for_templates(request):
    # The header of every page shows the visitor; a down experience tier must not turn the
    # friendly 404/500/503 pages themselves into errors, so it shows "anonymous" there.
    try:
        return account(request)
    except Unavailable:
        return None


def remember(response, session):
    """Sets the authenticator cookie from a signup/login answer {token, expires_at, user}."""
    expires_at = session["expires_at"]
    if isinstance(expires_at, str):
        expires_at = parse_datetime(expires_at)
    max_age = max(0, int((expires_at - timezone.now()).total_seconds()))
    response.set_cookie(settings.AUTH_COOKIE_NAME, session["token"], max_age=max_age,
                        path="/", httponly=True, samesite="Lax",
                        secure=settings.AUTH_COOKIE_SECURE)
    never_store(response)


def forget(response):
    response.delete_cookie(settings.AUTH_COOKIE_NAME, path="/", samesite="Lax")
    never_store(response)


def never_store(response):
    """A response that sets a cookie or carries a CSRF token is for one browser only."""
    add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private


def safe_next(request, candidate, default="/"):
    """`candidate` if it is a URL on this site (no open redirects), else `default`."""
    if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return candidate
    return default


def login_url(next_url=None):
    url = reverse("web:login")
    if next_url:
        url += "?" + urlencode({"next": next_url}, safe="/")
    return url


def login_required(view):
    """Anonymous visitors go to the log-in page, which brings them back here afterwards."""
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if account(request) is None:
            response = redirect(login_url(request.get_full_path()))
            if getattr(request, "_web_stale_token", False):
                forget(response)
            return response
        return view(request, *args, **kwargs)

    return wrapper


def unavailable_page(request):
    response = render(request, "web/503.html", {"status": 503}, status=503)
    response["Retry-After"] = "5"
    never_store(response)
    return response


class VisitorMiddleware:
    """request.account (lazy: the experience tier is asked only when a template or view needs
    the visitor and the cookie exists); Cache-Control: private on every answer to a request
    that carries the cookie; a stale cookie deleted; and, for the web pages only (not the JSON
    tiers served by the same process in tests), the experience tier's failures as pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if errors.is_api_path(request.path):
            return self.get_response(request)
        request.account = SimpleLazyObject(lambda: _account_for_templates(request))
        response = self.get_response(request)
        if getattr(request, "_web_stale_token", False):
            forget(response)
        elif token(request):
            patch_cache_control(response, private=True)
        return response

    def process_exception(self, request, exception):
        if errors.is_api_path(request.path):
            return None
        if isinstance(exception, Unavailable):
            log.warning("%s %s: %s", request.method, request.path, exception)
            return unavailable_page(request)
        if isinstance(exception, ApiError):
            if exception.status == 404:
                return errors.handler404(request, exception)
            if exception.status == 401:  # the authenticator expired between two calls
                request._web_stale_token = True
                return redirect(login_url(request.get_full_path()))
            if exception.status == 403:
                return errors.handler403(request, exception)
            return errors.handler400(request, exception)
        return None
