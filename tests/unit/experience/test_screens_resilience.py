"""Screens when one entity call breaks off (an instance killed while answering): recording a
view is a write, never resent, so when it fails the visitor still gets the listing page (with
the count read just before), not a 503; checking a token is a lookup, resent like a GET."""
import httpx

from marketplace import upstream
from tests.inprocess import DjangoClientTransport


class ViewsFail(httpx.BaseTransport):
    """The entity tier in-process, except that recording a view breaks off (an instance
    killed while answering)."""

    def __init__(self):
        self.tier = DjangoClientTransport()

    def handle_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/views"):
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return self.tier.handle_request(request)


def test_the_listing_screen_answers_when_its_view_cannot_be_recorded(experience_api,
                                                                      make_listing):
    listing = make_listing(title="Brass lamp", view_count=7)
    upstream.use_transport("entity", ViewsFail())
    response = experience_api.get(f"/listings/{listing.pk}")
    assert response.status_code == 200
    assert response.json()["data"]["listing"]["view_count"] == 7


def test_the_listing_screen_still_fails_when_the_listing_cannot_be_read(experience_api):
    upstream.use_transport("entity", httpx.MockTransport(
        lambda request: httpx.Response(502)))
    assert experience_api.get("/listings/1").status_code == 503


class FirstVerifyBreaksOff(httpx.BaseTransport):
    def __init__(self):
        self.tier, self.broken = DjangoClientTransport(), False

    def handle_request(self, request):
        if request.url.path.endswith("/authenticators/verify") and not self.broken:
            self.broken = True
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return self.tier.handle_request(request)


def test_a_logged_in_visitor_is_recognised_when_the_first_check_broke_off(experience_api,
                                                                          make_user):
    from entity.models import Authenticator

    _, token = Authenticator.issue(make_user("ada"))
    upstream.use_transport("entity", FirstVerifyBreaksOff())
    response = experience_api.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["data"]["user"]["username"] == "ada"
