"""What the entity API does, one function per operation. Views parse and render; these
functions hold the rules and raise ApiError for anything the caller got wrong."""
from decimal import Decimal

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from marketplace.api import ApiError

from .models import Authenticator, Listing, User

ORDERINGS = {
    "newest": ("-created_at", "-id"),
    "popular": ("-view_count", "-created_at", "-id"),
    "price_asc": ("price", "id"),
    "price_desc": ("-price", "-id"),
}


def not_found(kind):
    return ApiError(404, "not_found", f"No such {kind}.")


def get_or_404(queryset, pk, kind):
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise not_found(kind) from None


def page(queryset, limit, offset):
    return {"items": list(queryset[offset:offset + limit]), "count": queryset.count(),
            "limit": limit, "offset": offset}


def _check_password_strength(password, username="", email=""):
    try:
        validate_password(password, User(username=username, email=email))
    except DjangoValidationError as error:
        raise ApiError(422, "invalid", "The password is too weak.",
                       {"password": list(error.messages)}) from None


# --- users ----------------------------------------------------------------------------------

def create_user(data):
    _check_password_strength(data.password, data.username, data.email)
    if User.objects.filter(username__iexact=data.username).exists():
        raise _username_taken()
    user = User(username=data.username, email=data.email,
                display_name=data.display_name or data.username, bio=data.bio)
    user.set_password(data.password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # a concurrent sign-up took the name between check and insert
        raise _username_taken() from None
    return user


def _username_taken():
    return ApiError(409, "username_taken", "That username is already taken.",
                    {"username": ["That username is already taken."]})


def update_user(user_id, data):
    user = get_or_404(User.objects, user_id, "user")
    changes = data.dict(exclude_none=True)
    if "password" in changes:
        _check_password_strength(changes["password"], user.username, user.email)
        user.set_password(changes.pop("password"))
    for field, value in changes.items():
        setattr(user, field, value)
    user.save()
    return user


def delete_user(user_id):
    user = get_or_404(User.objects, user_id, "user")
    user.delete()
    return {"deleted": user_id}


def list_users(query):
    return page(User.objects.all(), query.limit, query.offset)


# --- listings -------------------------------------------------------------------------------

def listings():
    return Listing.objects.select_related("seller")


def create_listing(data):
    seller = User.objects.filter(pk=data.seller_id).first()
    if seller is None:
        raise ApiError(422, "invalid", "Some fields are missing or invalid.",
                       {"seller_id": ["No such user."]})
    return Listing.objects.create(seller=seller, title=data.title, description=data.description,
                                  price=cents(data.price), status=data.status)


def cents(price):
    """12.5 -> 12.50: the answer shows the price as the database stores it."""
    return price.quantize(Decimal("0.01"))


def update_listing(listing_id, data):
    listing = get_or_404(listings(), listing_id, "listing")
    changes = data.dict(exclude_none=True)
    if "price" in changes:
        changes["price"] = cents(changes["price"])
    for field, value in changes.items():
        setattr(listing, field, value)
    listing.save()
    return listing


def delete_listing(listing_id):
    listing = get_or_404(Listing.objects, listing_id, "listing")
    listing.delete()
    return {"deleted": listing_id}


def search_listings(query):
    queryset = listings()
    if query.status != "any":
        queryset = queryset.filter(status=query.status)
    if query.seller_id is not None:
        queryset = queryset.filter(seller_id=query.seller_id)
    if query.q:
        for word in query.q.split()[:8]:  # every word must appear, in title or description
            queryset = queryset.filter(Q(title__icontains=word) | Q(description__icontains=word))
    return page(queryset.order_by(*ORDERINGS[query.order]), query.limit, query.offset)


def record_view(listing_id):
    """An atomic increment in the database: concurrent views are never lost."""
    if not Listing.objects.filter(pk=listing_id).update(view_count=F("view_count") + 1):
        raise not_found("listing")
    return {"id": listing_id,
            "view_count": Listing.objects.values_list("view_count", flat=True).get(pk=listing_id)}


# --- authenticators -------------------------------------------------------------------------

def log_in(credentials):
    user = User.objects.filter(username__iexact=credentials.username).first()
    if user is None or not user.check_password(credentials.password):
        raise ApiError(401, "bad_credentials", "Wrong username or password.")
    authenticator, token = Authenticator.issue(user)
    return {"token": token, "authenticator": authenticator, "user": user}


def _valid_authenticator(token):
    authenticator = (Authenticator.objects.valid().for_token(token)
                     .select_related("user").first())
    if authenticator is None:
        raise ApiError(401, "invalid_token", "The authenticator is unknown, expired or revoked.")
    return authenticator


def verify(token):
    authenticator = _valid_authenticator(token)
    return {"authenticator": authenticator, "user": authenticator.user}


def revoke(token):
    authenticator = _valid_authenticator(token)
    authenticator.revoked_at = timezone.now()
    authenticator.save(update_fields=["revoked_at"])
    return {"revoked": True}


def list_authenticators(query):
    queryset = Authenticator.objects.all()
    if query.user_id is not None:
        queryset = queryset.filter(user_id=query.user_id)
    return page(queryset, query.limit, query.offset)


def delete_authenticator(authenticator_id):
    authenticator = get_or_404(Authenticator.objects, authenticator_id, "authenticator")
    authenticator.delete()
    return {"deleted": authenticator_id}
