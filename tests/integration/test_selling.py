"""A member lists something for sale: it is live at once, on every page that lists it; a form
with mistakes says what to fix and saves nothing; a title is always shown as text."""
import pytest

from tests.integration.pages import NewListingPage

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.mark.smoke
def test_member_lists_something_and_sees_its_page(site, logged_in):
    form = site.open_home().sell_something(expect=NewListingPage)

    listing = form.publish("Walnut bookshelf", "149.50",
                           "Five shelves, solid walnut.\nPick up in the city centre.")

    assert listing.title == "Walnut bookshelf"
    assert listing.price == "$149.50"
    assert "Five shelves, solid walnut." in listing.description
    assert listing.seller_name == logged_in.name
    assert listing.flash_messages == ["Listing created. It is live now."]
    listing.screenshot("listing-created",
                       "A listing just published, with the message that it is live.")


@pytest.mark.smoke
def test_new_listing_appears_on_home_page_and_in_search_at_once(site, stack, account, unique):
    if stack.config.cache == "ttl":
        pytest.skip("the ttl cache mode serves pages up to their age by design")
    # Warm the page cache with both pages as an anonymous visitor sees them. Logged-in pages
    # bypass the cache, so the new listing is looked for logged out, where a stale copy
    # would show.
    for _ in range(2):
        site.open_home()
    warm_home = site.last_response.cache
    for _ in range(2):
        site.open_search(unique)
    warm_search = site.last_response.cache
    if stack.config.cache == "invalidate":
        assert (warm_home, warm_search) == ("HIT", "HIT"), "both pages come from the cache"

    title = f"Vintage road bike {unique}"
    site.open_login().log_in(account.username, account.password)
    site.open_new_listing().publish(title, "320")
    site.open_home().log_out()

    assert site.open_home().newest_titles[0] == title
    assert site.open_search(unique).result_titles == [title]


@pytest.mark.parametrize("title, price, field, message", [
    ("", "25", "title", "This field is required."),
    ("Teak garden chairs", "-5", "price", "greater than or equal to 0"),
    ("Teak garden chairs", "twenty", "price", "Enter a price as a number, like 25 or 19.99."),
], ids=["empty title", "negative price", "price not a number"])
def test_listing_form_with_a_mistake_shows_it_and_saves_nothing(site, logged_in, unique, title,
                                                                price, field, message):
    form = site.open_new_listing()
    # the description carries the test's own word, for the search that checks nothing was saved
    description = f"Two folding chairs, hardly used. Ref. {unique}"

    again = form.publish(title, price, description, expect=NewListingPage)

    assert again.fields_with_errors == [field]
    assert any(message in error for error in again.errors_for(field)), again.errors_for(field)
    assert again.value_of("description") == description, "what was typed is kept"
    if price == "twenty":  # one screenshot of the form with errors is enough
        again.screenshot("new-listing-errors",
                         "The new listing form says what to fix and keeps what was typed.")
    assert site.open_search(unique).says_nothing_found, "nothing was saved"


def test_listing_form_refuses_overlong_text_and_saves_nothing(site, logged_in, unique):
    form = site.open_new_listing()
    # A person cannot type past the limits (the fields' maxlength stops the typing) ...
    assert form.max_length_of("title") == 120
    assert form.max_length_of("description") == 5000
    form.fill(title="Long " * 30)
    assert len(form.value_of("title")) == 120
    # ... but a script or an old browser can send more: the site must refuse it.
    form.fill(price="10")
    form.set_value("title", f"Overlong {unique} " + "x" * 200)
    form.set_value("description", f"Overlong {unique} " + "y" * 5000)

    again = form.send(expect=NewListingPage)

    assert set(again.fields_with_errors) == {"title", "description"}
    assert "at most 120 characters" in again.errors_for("title")[0]
    assert "at most 5000 characters" in again.errors_for("description")[0]
    assert site.open_search(unique).says_nothing_found, "nothing was saved"


def test_title_with_html_and_javascript_is_shown_as_text_not_run(site, logged_in, unique):
    # Were the markup run, it would leave a mark on the page (rather than open an alert(),
    # which would stop the browser's next command instead of failing this test's assertion).
    title = (f'<script>document.body.dataset.ran=1</script>'
             f'<img src=x onerror="document.body.dataset.ran=1"> {unique}')
    assert len(title) <= 120

    listing = site.open_new_listing().publish(title, "5", f"<b>bold?</b> {unique}")

    assert listing.title == title, "the title reads exactly as it was typed"
    assert listing.elements_in_title() == []
    assert "<b>bold?</b>" in listing.description
    assert not script_ran(site)
    # the same on the pages that list it
    assert site.open_search(unique).result_titles == [title]
    assert not script_ran(site)
    assert site.open_home().newest_titles[0] == title
    assert not script_ran(site)


def script_ran(site) -> bool:
    return site.javascript(
        "return document.body.dataset.ran !== undefined"
        " || document.querySelectorAll('main script, main img').length > 0")
