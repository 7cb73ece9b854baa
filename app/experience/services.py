"""One function per screen or action, each composed from entity calls. Entity 4xx errors
travel up unchanged (ApiError); an unreachable entity tier raises upstream.Unavailable."""
import logging
import math

from marketplace import upstream
from marketplace.api import ApiError

HOME_NEWEST = 12
HOME_POPULAR = 6
MORE_FROM_SELLER = 4
PER_PAGE = 20

log = logging.getLogger(__name__)


def entity(method, path, **kwargs):
    return upstream.call("entity", method, path, **kwargs).data


def _pages(count, per_page):
    return max(1, math.ceil(count / per_page))


def home():
    newest = entity("GET", "/entity/v1/listings", params={"order": "newest", "limit": HOME_NEWEST})
    popular = entity("GET", "/entity/v1/listings",
                     params={"order": "popular", "limit": HOME_POPULAR})
    return {"newest": newest["items"], "popular": popular["items"]}, ["listings"]


def listing(listing_id):
    item = entity("GET", f"/entity/v1/listings/{listing_id}")
    try:
        item["view_count"] = entity("POST", f"/entity/v1/listings/{listing_id}/views")[
            "view_count"]
    except upstream.Unavailable as error:
        # A view is not content (docs/api.md): the page shows the count it read. Recording it
        # is a write, which is never resent (it may have been counted), so an entity instance
        # dying at that moment may lose one view, but not the visitor's page.
        log.warning("could not record a view of listing %s: %s", listing_id, error)
    seller_id = item["seller"]["id"]
    seller = entity("GET", f"/entity/v1/users/{seller_id}")
    others = entity("GET", "/entity/v1/listings",
                    params={"seller_id": seller_id, "limit": MORE_FROM_SELLER + 1})
    more = [other for other in others["items"] if other["id"] != listing_id][:MORE_FROM_SELLER]
    tags = [f"listing:{listing_id}", f"user:{seller_id}", f"seller:{seller_id}"]
    return {"listing": item, "seller": seller, "more_from_seller": more}, tags


def seller(seller_id, page):
    user = entity("GET", f"/entity/v1/users/{seller_id}")
    found = entity("GET", "/entity/v1/listings",
                   params={"seller_id": seller_id, "limit": PER_PAGE,
                           "offset": (page - 1) * PER_PAGE})
    screen = {"seller": user, "listings": found["items"], "count": found["count"], "page": page,
              "pages": _pages(found["count"], PER_PAGE)}
    return screen, [f"user:{seller_id}", f"seller:{seller_id}"]


def search(query, page):
    params = {"limit": PER_PAGE, "offset": (page - 1) * PER_PAGE}
    if query:
        params["q"] = query
    found = entity("GET", "/entity/v1/listings", params=params)
    screen = {"query": query, "results": found["items"], "count": found["count"], "page": page,
              "pages": _pages(found["count"], PER_PAGE), "per_page": PER_PAGE}
    return screen, ["listings"]


def _session(issued):
    return {"token": issued["token"], "expires_at": issued["authenticator"]["expires_at"],
            "user": issued["user"]}


def log_in(username, password):
    return _session(entity("POST", "/entity/v1/authenticators",
                           json={"username": username, "password": password}, slow=True))


def sign_up(data):
    entity("POST", "/entity/v1/users",
           json={"username": data.username, "email": data.email, "password": data.password},
           slow=True)
    return log_in(data.username, data.password)


def log_out(token):
    entity("POST", "/entity/v1/authenticators/revoke", json={"token": token})
    return {"logged_out": True}


def user_for(token):
    """The user a bearer token belongs to; 401 when it is unknown, expired or revoked."""
    try:
        # a lookup (it changes nothing), so it may be resent like a GET
        return entity("POST", "/entity/v1/authenticators/verify", json={"token": token},
                      idempotent=True)["user"]
    except ApiError as error:
        if error.status in (401, 422):
            raise ApiError(401, "unauthorized", "Log in first: the authenticator is missing, "
                           "expired or revoked.") from None
        raise


def create_listing(user, data):
    created = entity("POST", "/entity/v1/listings",
                     json={"seller_id": user["id"], "title": data.title,
                           "description": data.description, "price": str(data.price)})
    return {"listing": created}
