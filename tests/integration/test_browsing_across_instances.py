"""The browser talks to HAProxy, which spreads its page loads over the web instances and keeps
a visitor's session going when one of them dies. Which instance served a page is in its
X-Served-By header, read from the browser's own network log."""
import pytest

from tests.integration.pages import HomePage, ListingPage, NewListingPage, SearchPage

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.fixture
def web_instances(stack):
    names = [instance.name for instance in stack.instances("web")]
    if len(names) < 2:
        pytest.skip(f"the stack has {len(names)} web instance; these tests need two or more")
    return names


@pytest.mark.smoke
def test_successive_page_loads_are_served_by_more_than_one_web_instance(site, web_instances):
    # Round robin alternates between the instances; an instance that was just restarted gets
    # a smaller share for a few seconds (HAProxy's slowstart), hence up to 20 loads, not 2.
    for _ in range(20):
        site.open_home()
        served_by = [response.served_by for response in site.responses]
        if len(set(served_by)) >= 2:
            break

    assert set(served_by) <= set(web_instances)
    assert len(set(served_by)) >= 2, f"every page came from one instance: {served_by}"
    assert {response.status for response in site.responses} == {200}


def test_killing_a_web_instance_mid_session_keeps_the_visitor_logged_in(site, stack, logged_in,
                                                                        web_instances, unique):
    victim, survivors = web_instances[0], web_instances[1:]
    listing_id = site.open_home().open_listing().listing_id
    site.forget_responses()

    stack.kill(victim)  # SIGKILL, as a crash: no graceful goodbye to HAProxy
    try:
        # straight on, before HAProxy's health checks notice: the first loads may be sent to
        # the dead instance, and HAProxy must retry them on another one
        seen = []
        for visit in (site.open_home, lambda: site.open_listing(listing_id),
                      lambda: site.open_search("desk"), site.open_new_listing, site.open_home):
            page = visit()
            seen.append((type(page), page.logged_in_as))
        # a form sent after the crash works too
        created = site.open_new_listing().publish(f"Desk lamp {unique}", "12")
        seen.append((type(created), created.logged_in_as))
    finally:
        stack.restart(victim)  # back in HAProxy's rotation, for the tests that follow

    name = logged_in.name
    assert seen == [(HomePage, name), (ListingPage, name), (SearchPage, name),
                    (NewListingPage, name), (HomePage, name), (ListingPage, name)]
    assert {response.status for response in site.responses} == {200}, "no error page"
    assert {response.served_by for response in site.responses} <= set(survivors)
