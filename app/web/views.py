"""The web tier's pages. Each view parses its input with a form, makes one call to the
experience tier (web.experience) and renders. Upstream failures are turned into the friendly
404 / 503 pages by web.visitor.VisitorMiddleware, so the views only handle what a person can fix.

Caching contract with the page cache: a page rendered from an experience GET screen copies the
screen's X-Cache-Tags; a page for a logged-in visitor is Cache-Control: private; form pages
(they carry a CSRF token) and anything that sets a cookie are never stored."""
import logging

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from marketplace.api import ApiError
from marketplace.upstream import Unavailable

from . import experience, visitor
from .forms import ListingForm, LoginForm, SearchForm, SignupForm, add_api_errors, page_number

log = logging.getLogger(__name__)


def page(request, template, context, reply=None, status=200):
    """Renders a page; `reply` is the experience screen it shows, whose cache tags it carries."""
    response = render(request, template, context, status=status)
    tags = reply.headers.get("X-Cache-Tags") if reply is not None else None
    if tags:
        response["X-Cache-Tags"] = tags
    if visitor.token(request):
        patch_cache_control(response, private=True)
    return response


@require_safe
def home(request):
    reply = experience.home()
    return page(request, "web/home.html", reply.data, reply)


@require_safe
def listing(request, listing_id):
    reply = experience.listing(listing_id)
    return page(request, "web/listing.html", reply.data, reply)


@require_safe
def seller(request, seller_id):
    reply = experience.seller(seller_id, page_number(request.GET))
    return page(request, "web/seller.html", reply.data, reply)


@require_safe
def search(request):
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else request.GET.get("q", "")[:100].strip()
    reply = experience.search(query, page_number(request.GET))
    return page(request, "web/search.html", {**reply.data, "query": query}, reply)


def _account_form(request, form_class, call, template, greeting):
    """Sign-up and log-in: the form, the experience call that returns a session, the cookie,
    and back to where the visitor was going."""
    next_url = visitor.safe_next(request, request.POST.get("next") or request.GET.get("next"))
    form = form_class(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            session = call(**form.cleaned_data).data
        except ApiError as error:
            add_api_errors(form, error)
        else:
            name = session["user"]["display_name"] or session["user"]["username"]
            messages.success(request, greeting.format(name=name))
            response = redirect(next_url)
            visitor.remember(response, session)
            return response
    return page(request, template, {"form": form, "next": next_url})


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request):
    return _account_form(request, SignupForm, experience.signup, "web/signup.html",
                         "Welcome to Marketplace, {name}! Your account is ready.")


@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    return _account_form(request, LoginForm, experience.login, "web/login.html",
                         "Welcome back, {name}!")


@require_http_methods(["GET", "POST"])
def logout(request):
    if request.method == "GET":  # a typed or bookmarked /logout: log-out needs the form's POST
        return redirect("web:home")
    token = visitor.token(request)
    if token:
        try:
            experience.logout(token)
        except ApiError:
            pass  # already expired or revoked: nothing left to revoke
        except Unavailable as error:
            # the browser forgets the token anyway; it stays valid until it expires
            log.warning("could not revoke an authenticator at log out: %s", error)
    messages.info(request, "Logged out. See you soon!")
    response = redirect("web:home")
    visitor.forget(response)
    return response


@never_cache
@require_http_methods(["GET", "POST"])
@visitor.login_required
def listing_new(request):
    form = ListingForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            created = experience.create_listing(visitor.token(request), **form.cleaned_data)
        except ApiError as error:
            if error.status != 422:
                raise  # 401 (expired meanwhile) and others: handled by the middleware
            add_api_errors(form, error)
        else:
            messages.success(request, "Listing created. It is live now.")
            return redirect("web:listing", listing_id=created.data["listing"]["id"])
    return page(request, "web/listing_form.html", {"form": form})


def csrf_failure(request, reason=""):
    """settings.CSRF_FAILURE_VIEW: a form posted without its token (an old tab, a cross-site
    post) gets the friendly 403 page instead of Django's technical one."""
    response = render(request, "web/403.html", {"status": 403, "csrf": True}, status=403)
    visitor.never_store(response)
    return response
