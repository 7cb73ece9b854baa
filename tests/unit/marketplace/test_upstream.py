"""Calls between tiers (marketplace.upstream): a GET whose answer broke off is sent once more,
nothing else is ever resent, and what still fails becomes Unavailable (a 503 for the caller)."""
import httpx
import pytest

from marketplace import upstream


@pytest.fixture
def entity_answers():
    """Routes the entity tier to a list of scripted outcomes; returns the requests it got."""
    received = []

    def script(*outcomes):
        remaining = list(outcomes)

        def handle(request):
            received.append(request.method)
            outcome = remaining.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return httpx.Response(200, json={"ok": True, "data": outcome})

        upstream.use_transport("entity", httpx.MockTransport(handle))
        return received

    return script


def cut_off():
    return httpx.RemoteProtocolError("peer closed connection without sending complete body")


def test_a_get_whose_answer_broke_off_is_sent_once_more(entity_answers):
    received = entity_answers(cut_off(), {"n": 1})
    assert upstream.call("entity", "GET", "/entity/v1/listings").data == {"n": 1}
    assert received == ["GET", "GET"]


def test_a_get_that_breaks_off_twice_is_unavailable(entity_answers):
    received = entity_answers(cut_off(), httpx.ReadError("reset"))
    with pytest.raises(upstream.Unavailable):
        upstream.call("entity", "GET", "/entity/v1/listings")
    assert received == ["GET", "GET"]


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_a_write_is_never_sent_twice(entity_answers, method):
    received = entity_answers(cut_off(), {"n": 1})
    with pytest.raises(upstream.Unavailable):
        upstream.call("entity", method, "/entity/v1/listings", json={})
    assert received == [method]


def test_a_get_that_timed_out_is_not_sent_again(entity_answers):
    received = entity_answers(httpx.ReadTimeout("slow"), {"n": 1})
    with pytest.raises(upstream.Unavailable):
        upstream.call("entity", "GET", "/entity/v1/listings")
    assert received == ["GET"]


def test_a_post_marked_idempotent_is_resent_like_a_get(entity_answers):
    # e.g. verifying a token: a lookup that needs a body
    received = entity_answers(cut_off(), {"user": 1})
    reply = upstream.call("entity", "POST", "/entity/v1/authenticators/verify", json={},
                          idempotent=True)
    assert reply.data == {"user": 1} and received == ["POST", "POST"]


def test_calls_to_the_experience_tier_carry_the_web_tiers_credential(settings):
    # HAProxy's experience frontend exempts calls with it from its log-in rate limit
    seen = []
    upstream.use_transport("experience", httpx.MockTransport(
        lambda request: seen.append(request.headers) or httpx.Response(200, json={"ok": True})))
    try:
        upstream.call("experience", "POST", "/exp/v1/login", json={}, slow=True)
    finally:
        upstream.use_transport("experience", None)
    assert seen[0]["x-web-tier-token"] == settings.WEB_TIER_TOKEN
    assert "x-service-token" not in seen[0]
