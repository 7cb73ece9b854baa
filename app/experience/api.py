"""The experience tier's JSON API: one call per screen of the site (or of a mobile app).
Public: it holds the service credential for the entity tier and never exposes it."""
from django.http import HttpResponse
from ninja import Query, Status
from ninja.security import HttpBearer

from marketplace.api import ERRORS, envelope, make_api, ok
from marketplace.errors import error_body
from marketplace.upstream import Unavailable

from . import schemas as s
from . import services


class Authenticator(HttpBearer):
    """Authorization: Bearer <token>; the entity tier says whose it is."""

    def authenticate(self, request, token):
        return {"token": token, "user": services.user_for(token)}


api = make_api("Marketplace experience API", "experience",
               description="One call per screen, composed from the entity tier.")


@api.exception_handler(Unavailable)
def entity_unavailable(request, exc):
    return api.create_response(
        request, error_body("entity_unavailable",
                            "The marketplace's data service is unavailable; try again shortly."),
        status=503)


def answers(schema, status=200):
    return {status: envelope(schema), **ERRORS}


def tagged(response: HttpResponse, result):
    data, tags = result
    response["X-Cache-Tags"] = " ".join(tags)
    return ok(data)


@api.get("/home", response=answers(s.HomeOut), tags=["screens"])
def home(request, response: HttpResponse):
    return tagged(response, services.home())


@api.get("/listings/{int:listing_id}", response=answers(s.ListingScreen), tags=["screens"])
def listing(request, listing_id: int, response: HttpResponse):
    return tagged(response, services.listing(listing_id))


@api.get("/sellers/{int:seller_id}", response=answers(s.SellerScreen), tags=["screens"])
def seller(request, seller_id: int, response: HttpResponse, query: Query[s.PageQuery]):
    return tagged(response, services.seller(seller_id, query.page))


@api.get("/search", response=answers(s.SearchScreen), tags=["screens"])
def search(request, response: HttpResponse, query: Query[s.SearchQuery]):
    return tagged(response, services.search(query.q, query.page))


@api.post("/signup", response=answers(s.Session, 201), tags=["accounts"])
def sign_up(request, payload: s.SignupIn):
    return Status(201, ok(services.sign_up(payload)))


@api.post("/login", response=answers(s.Session), tags=["accounts"])
def log_in(request, payload: s.LoginIn):
    return ok(services.log_in(payload.username, payload.password))


@api.post("/logout", response=answers(s.LoggedOut), auth=Authenticator(), tags=["accounts"])
def log_out(request):
    return ok(services.log_out(request.auth["token"]))


@api.get("/me", response=answers(s.Me), auth=Authenticator(), tags=["accounts"])
def me(request):
    return ok({"user": request.auth["user"]})


@api.post("/listings", response=answers(s.CreatedListing, 201), auth=Authenticator(),
          tags=["listings"])
def create_listing(request, payload: s.NewListingIn):
    return Status(201, ok(services.create_listing(request.auth["user"], payload)))
