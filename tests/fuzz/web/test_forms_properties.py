"""Properties of the web tier's forms (web.forms) for any input a browser can send: they never
raise, they never let through what the entity tier would refuse as malformed (so a person sees
every mistake on the form, next to the field), and the pages that use them never answer a 5xx."""
from decimal import Decimal

import pytest
from django.http import QueryDict
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from entity.models import MAX_PRICE
from entity.schemas import ListingIn, UserIn
from marketplace.api import ApiError
from tests.fuzz import harness
from web.forms import (ListingForm, LoginForm, SearchForm, SignupForm, add_api_errors,
                       page_number)

PROPERTIES = hypothesis_settings(max_examples=harness.PROPERTY_EXAMPLES, deadline=None,
                                 database=None, derandomize=True)
# The page tests share one test database per test (a function-scoped fixture, on purpose) and
# render whole pages: fewer examples (40 of the default 150).
PAGES = hypothesis_settings(PROPERTIES,
                            max_examples=max(5, harness.PROPERTY_EXAMPLES * 4 // 15),
                            suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                   HealthCheck.too_slow])

# What a form field can receive: any text, with the tricky cases made likely.
text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", " ", "\x00", "abc", "a" * 31, "ada.lovelace", "ada lovelace",
                     "ada@example.com", "ada@", "@example.com", "a@b", "NaN", "Infinity",
                     "-0", "0", "0.001", "1e2", "1E+6", "1000000", "1000000.01", "12,50",
                     " 12.50 ", "٣", "<script>alert(1)</script>", "'; DROP TABLE entity_user; --",
                     "a sturdy passphrase 42"]),
)


def form_data(*names):
    return st.fixed_dictionaries({}, optional={name: text for name in names})


def querydict(data):
    query = QueryDict(mutable=True)
    for name, value in data.items():
        query[name] = value
    return query


@PROPERTIES
@given(data=st.dictionaries(st.sampled_from(["page", "q", "x"]),
                            st.one_of(text, st.lists(text, max_size=3))))
def test_page_number_is_always_a_page_from_1_to_10000(data):
    query = QueryDict(mutable=True)
    for name, value in data.items():
        query.setlist(name, value if isinstance(value, list) else [value])
    page = page_number(query)
    assert isinstance(page, int) and 1 <= page <= 10_000


@PROPERTIES
@given(data=form_data("q", "page"))
def test_a_valid_search_is_stripped_and_at_most_100_characters(data):
    form = SearchForm(querydict(data))
    if form.is_valid():
        q = form.cleaned_data["q"]
        assert q == q.strip() and len(q) <= 100


@PROPERTIES
@given(data=form_data("username", "email", "password", "password_confirm"))
def test_a_valid_signup_is_one_the_entity_tier_accepts(data):
    form = SignupForm(querydict(data))
    if form.is_valid():
        fields = form.cleaned_data
        assert fields["password"] == fields["password_confirm"]
        UserIn(username=fields["username"], email=fields["email"],
               password=fields["password"])  # raises if the tier would refuse it as malformed


@PROPERTIES
@given(data=form_data("username", "password"))
def test_the_login_form_never_raises(data):
    LoginForm(querydict(data)).is_valid()


@PROPERTIES
@given(data=form_data("title", "price", "description"))
def test_a_valid_listing_is_one_the_entity_tier_accepts(data):
    form = ListingForm(querydict(data))
    if form.is_valid():
        fields = form.cleaned_data
        assert Decimal(0) <= fields["price"] <= MAX_PRICE
        assert fields["price"].is_finite() and -fields["price"].as_tuple().exponent <= 2
        # what web.experience.create_listing sends, as the entity tier receives it
        ListingIn(seller_id=1, title=fields["title"], description=fields["description"],
                  price=str(fields["price"]))


@PROPERTIES
@given(fields=st.dictionaries(st.sampled_from(["title", "price", "nope", "__all__", ""]),
                              # the error shape: each field named has at least one message
                              st.lists(st.text(max_size=50), min_size=1, max_size=3),
                              max_size=4),
       message=st.text(max_size=50))
def test_errors_from_the_tiers_always_land_on_the_form(fields, message):
    form = ListingForm({"title": "Oak desk", "price": "12"})
    form.is_valid()
    add_api_errors(form, ApiError(422, "invalid", message or "Invalid.", fields or None))
    assert form.errors  # every upstream refusal is shown, none is lost


# --- the pages behind the forms --------------------------------------------------------------

@pytest.fixture
def member(world):
    """A browser logged in as the fuzzer (tests/fuzz/harness.py), on the in-process tiers."""
    from django.conf import settings

    browser = Client()
    browser.cookies[settings.AUTH_COOKIE_NAME] = harness.BEARER
    return browser


@PAGES
@given(data=form_data("q", "page"))
def test_the_search_page_never_fails(world, data):
    response = Client().get("/search", data)
    assert response.status_code == 200


@PAGES
@given(path=st.sampled_from(["/signup", "/login"]),
       data=form_data("username", "email", "password", "password_confirm", "next"))
def test_posting_the_account_forms_never_fails(world, path, data):
    response = Client().post(path, data)
    assert response.status_code in (200, 302)


@PAGES
@given(data=form_data("title", "price", "description"))
def test_posting_the_listing_form_never_fails(member, data):
    response = member.post("/listings/new", data)
    assert response.status_code in (200, 302)
