"""What every tier shares: the health endpoint, X-Served-By, and JSON errors on API paths."""
import json

import pytest
from django.test import Client, RequestFactory

from marketplace import errors


def test_healthz_reports_a_healthy_tier_and_its_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["checks"] == {"database": "ok"}


def test_every_response_names_the_instance_that_served_it(settings):
    assert Client().get("/healthz")["X-Served-By"] == settings.INSTANCE


def test_unknown_api_paths_answer_json_not_html():
    response = Client().get("/exp/v1/no/such/screen")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_on_an_experience_screen_is_a_json_405():
    response = Client().delete("/exp/v1/home")
    assert response.status_code == 405 and response.json()["ok"] is False


@pytest.mark.parametrize("tier", ["experience", "entity"])
@pytest.mark.parametrize("status", [400, 403, 404, 500])
def test_json_tiers_answer_errors_off_their_api_with_the_json_shape(settings, tier, status):
    # e.g. GET / or /favicon.ico on the experience tier's public port was a 500: the friendly
    # page links to the web tier's URLs, which the other tiers cannot reverse
    settings.TIERS = (tier,)
    handler = getattr(errors, f"handler{status}")
    response = handler(RequestFactory().get("/favicon.ico"))
    assert response.status_code == status
    assert json.loads(response.content)["ok"] is False
