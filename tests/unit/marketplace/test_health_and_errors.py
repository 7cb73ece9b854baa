"""What every tier shares: the health endpoint, X-Served-By, and JSON errors on API paths."""
from django.test import Client


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
