"""The entity tier's JSON API: CRUD over users, listings and authenticators. Internal: every
operation needs the service credential that only the experience tier holds."""
import hmac

from django.conf import settings
from ninja import Query, Status
from ninja.security import APIKeyHeader

from marketplace.api import ERRORS, envelope, make_api, ok

from . import schemas as s
from . import services
from .models import Authenticator, User


class ServiceCredential(APIKeyHeader):
    param_name = "X-Service-Token"

    def authenticate(self, request, key):
        if key and hmac.compare_digest(key.encode(), settings.SERVICE_TOKEN.encode()):
            return "experience"
        return None


api = make_api("Marketplace entity API", "entity", auth=ServiceCredential(),
               description="Internal CRUD over the marketplace's data; needs X-Service-Token.")


def answers(schema, status=200):
    return {status: envelope(schema), **ERRORS}


# --- users ----------------------------------------------------------------------------------

@api.post("/users", response=answers(s.UserOut, 201), tags=["users"])
def create_user(request, payload: s.UserIn):
    return Status(201, ok(services.create_user(payload)))


@api.get("/users", response=answers(s.UserPage), tags=["users"])
def list_users(request, query: Query[s.PageQuery]):
    return ok(services.list_users(query))


@api.get("/users/{int:user_id}", response=answers(s.UserOut), tags=["users"])
def get_user(request, user_id: int):
    return ok(services.get_or_404(User.objects, user_id, "user"))


@api.patch("/users/{int:user_id}", response=answers(s.UserOut), tags=["users"])
def update_user(request, user_id: int, payload: s.UserPatch):
    return ok(services.update_user(user_id, payload))


@api.delete("/users/{int:user_id}", response=answers(s.Deleted), tags=["users"])
def delete_user(request, user_id: int):
    return ok(services.delete_user(user_id))


# --- listings -------------------------------------------------------------------------------

@api.post("/listings", response=answers(s.ListingOut, 201), tags=["listings"])
def create_listing(request, payload: s.ListingIn):
    return Status(201, ok(services.create_listing(payload)))


@api.get("/listings", response=answers(s.ListingPage), tags=["listings"])
def list_listings(request, query: Query[s.ListingQuery]):
    return ok(services.search_listings(query))


@api.get("/listings/{int:listing_id}", response=answers(s.ListingOut), tags=["listings"])
def get_listing(request, listing_id: int):
    return ok(services.get_or_404(services.listings(), listing_id, "listing"))


@api.patch("/listings/{int:listing_id}", response=answers(s.ListingOut), tags=["listings"])
def update_listing(request, listing_id: int, payload: s.ListingPatch):
    return ok(services.update_listing(listing_id, payload))


@api.delete("/listings/{int:listing_id}", response=answers(s.Deleted), tags=["listings"])
def delete_listing(request, listing_id: int):
    return ok(services.delete_listing(listing_id))


@api.post("/listings/{int:listing_id}/views", response=answers(s.ViewsOut), tags=["listings"])
def record_view(request, listing_id: int):
    return ok(services.record_view(listing_id))


# --- authenticators -------------------------------------------------------------------------

@api.post("/authenticators", response=answers(s.IssuedAuthenticator, 201),
          tags=["authenticators"])
def log_in(request, payload: s.Credentials):
    return Status(201, ok(services.log_in(payload)))


@api.post("/authenticators/verify", response=answers(s.VerifiedAuthenticator),
          tags=["authenticators"])
def verify(request, payload: s.TokenIn):
    return ok(services.verify(payload.token))


@api.post("/authenticators/revoke", response=answers(s.Revoked), tags=["authenticators"])
def revoke(request, payload: s.TokenIn):
    return ok(services.revoke(payload.token))


@api.get("/authenticators", response=answers(s.AuthenticatorPage), tags=["authenticators"])
def list_authenticators(request, query: Query[s.AuthenticatorQuery]):
    return ok(services.list_authenticators(query))


@api.get("/authenticators/{int:authenticator_id}", response=answers(s.AuthenticatorOut),
         tags=["authenticators"])
def get_authenticator(request, authenticator_id: int):
    return ok(services.get_or_404(Authenticator.objects, authenticator_id, "authenticator"))


@api.delete("/authenticators/{int:authenticator_id}", response=answers(s.Deleted),
            tags=["authenticators"])
def delete_authenticator(request, authenticator_id: int):
    return ok(services.delete_authenticator(authenticator_id))
