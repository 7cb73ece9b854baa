"""Page objects: the marketplace's pages as a person sees them. Tests say what a person does
(`site.open_home().open_listing()`, `signup.sign_up(...)`) and what they see
(`listing.title`, `form.errors_for("price")`); every locator lives here.

Every action that loads a page waits for it explicitly (the old document replaced, then one of
the site's pages rendered) and returns the page object of the page that arrived.
When another page arrives than the one the action expects (an error page, say), the wait fails
at once and names the page it got, instead of timing out on a missing element."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from selenium.common.exceptions import (InvalidSessionIdException, NoSuchWindowException,
                                        TimeoutException, WebDriverException)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from lab.browser import document_responses

# A page renders in well under a second, the first of each instance in a few; on two cores
# shared with a load test it can take many. Waits end as soon as the page is there.
TIMEOUT = 40.0


@dataclass
class Response:
    """What the browser received for one page (headers a page's DOM cannot show)."""
    url: str
    status: int
    served_by: str | None
    cache: str | None


class Page:
    """What every page has: the top bar (search, account links), flash messages, a title."""
    marker: str  # a CSS selector only this kind of page has
    name: str  # for people, in failure messages

    def __init__(self, site: "Site"):
        self.site = site
        self.driver = site.driver

    # --- finding things -----------------------------------------------------------------------
    def _find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def _all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def _texts(self, css: str) -> list[str]:
        return [element.text.strip() for element in self._all(css)]

    def _text_or_none(self, css: str) -> str | None:
        elements = self._all(css)
        return elements[0].text.strip() if elements else None

    @property
    def url(self) -> str:
        return self.driver.current_url

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def heading(self) -> str:
        return self._find("main h1").text.strip()

    @property
    def flash_messages(self) -> list[str]:
        return self._texts(".flashes .flash")

    # --- the top bar --------------------------------------------------------------------------
    @property
    def logged_in_as(self) -> str | None:
        """The name in the top bar's "Hi, <name>", or None for an anonymous visitor."""
        greeting = self._text_or_none("header nav a.hello")  # the avatar's initial, then "Hi, .."
        return greeting.split("Hi,", 1)[-1].strip() if greeting else None

    @property
    def account_id(self) -> int | None:
        """The logged-in visitor's user id (their profile link in the top bar)."""
        links = self._all("header nav a.hello")
        if not links:
            return None
        return int(re.search(r"/sellers/(\d+)", links[0].get_attribute("href")).group(1))

    def search(self, query: str) -> "SearchPage":
        box = self._find("header form[role=search] input[name=q]")
        box.clear()
        box.send_keys(query)
        return self.site.after(lambda: box.send_keys(Keys.ENTER), SearchPage)

    def sell_something(self, expect=None) -> "NewListingPage | LoginPage":
        """Clicks "Sell something": the new listing form, or the log-in page when anonymous."""
        link = self._find("header nav a[href='/listings/new']")
        return self.site.after(link.click, expect or (NewListingPage, LoginPage))

    def log_out(self) -> "HomePage":
        button = self._find("header nav form.logout button[type=submit]")
        return self.site.after(button.click, HomePage)

    def go_to_log_in(self) -> "LoginPage":
        return self.site.after(self._find("header nav a[href^='/login']").click, LoginPage)

    def go_to_sign_up(self) -> "SignupPage":
        return self.site.after(self._find("header nav a[href^='/signup']").click, SignupPage)

    def screenshot(self, name: str, caption: str) -> None:
        self.site.screenshot(name, caption)


class Cards:
    """Listing cards (home, search, seller pages): their titles, and opening one."""

    def _card_titles(self, scope: str) -> list[str]:
        return self._texts(f"{scope} .card .card-title a")

    def _open_card(self, scope: str, title: str | None) -> "ListingPage":
        links = self._all(f"{scope} .card .card-title a")
        if title is not None:
            links = [link for link in links if link.text.strip() == title]
        if not links:
            raise AssertionError(f"no listing card {title!r} on {self.name} ({self.url})")
        link = links[0]
        # the card may be below the fold of the window: bring it into view before the click
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
        return self.site.after(link.click, ListingPage)


class HomePage(Page, Cards):
    marker = "section.hero"
    name = "the home page"

    @property
    def newest_titles(self) -> list[str]:
        return self._card_titles("section[aria-labelledby=newest-heading]")

    @property
    def popular_titles(self) -> list[str]:
        return self._texts("aside.popular .ranked-title")

    def open_listing(self, title: str | None = None) -> "ListingPage":
        """Opens the newest listing, or the one with this title."""
        return self._open_card("section[aria-labelledby=newest-heading]", title)


class ListingPage(Page, Cards):
    marker = "h1.listing-title"
    name = "a listing page"

    @property
    def listing_id(self) -> int:
        return int(re.search(r"/listings/(\d+)", self.url).group(1))

    @property
    def title(self) -> str:
        return self._find("h1.listing-title").text.strip()

    @property
    def price(self) -> str:
        return self._find(".listing-side .price").text.strip()

    @property
    def description(self) -> str:
        return self._text_or_none(".listing .description") or ""

    @property
    def seller_name(self) -> str:
        return self._find(".seller-box .seller-line strong").text.strip()

    def elements_in_title(self) -> list[str]:
        """Tag names of any elements inside the title: none when it is shown as text."""
        return [element.tag_name for element in self._all("h1.listing-title *")]

    def open_seller(self) -> "SellerPage":
        link = self._find(".seller-box a.seller-line")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
        return self.site.after(link.click, SellerPage)


class SellerPage(Page, Cards):
    marker = "section.profile"
    name = "a seller's page"

    @property
    def seller_name(self) -> str:
        return self._find("section.profile h1").text.strip()

    @property
    def listing_titles(self) -> list[str]:
        return self._card_titles("section[aria-labelledby=seller-listings]")


class SearchPage(Page, Cards):
    marker = ".search-head h1"
    name = "the search page"

    @property
    def result_titles(self) -> list[str]:
        return self._card_titles("main .grid")

    @property
    def summary(self) -> str:
        """"12 listings found", under the heading."""
        return self._text_or_none(".search-head p") or ""

    @property
    def says_nothing_found(self) -> bool:
        return bool(self._all(".nothing-found"))

    def open_result(self, title: str | None = None) -> "ListingPage":
        return self._open_card("main .grid", title)


class FormPage(Page):
    """A page with one form in <main>: fields by name, and the errors the site put on it."""
    form: str  # CSS selector of the form

    def fill(self, **values: str) -> None:
        for name, value in values.items():
            field = self._find(f"{self.form} [name={name}]")
            field.clear()
            if value:
                field.send_keys(value)

    def set_value(self, name: str, value: str) -> None:
        """Puts `value` into a field the way a script (or an old browser) would, ignoring the
        field's maxlength, which stops a person's typing at the limit."""
        field = self._find(f"{self.form} [name={name}]")
        self.driver.execute_script("arguments[0].value = arguments[1]", field, value)

    def value_of(self, name: str) -> str:
        return self._find(f"{self.form} [name={name}]").get_attribute("value") or ""

    def max_length_of(self, name: str) -> int | None:
        value = self._find(f"{self.form} [name={name}]").get_attribute("maxlength")
        return int(value) if value else None

    def errors_for(self, name: str) -> list[str]:
        """The messages shown under field `name`."""
        return self._texts(f"{self.form} .field:has([name={name}]) .field-errors li")

    @property
    def fields_with_errors(self) -> list[str]:
        fields = self._all(f"{self.form} .field.has-error [name]")
        return [field.get_attribute("name") for field in fields]

    @property
    def form_errors(self) -> list[str]:
        """Messages about the whole form (above its fields)."""
        return self._texts(f"{self.form} .alert p")

    def _submit(self, expect):
        button = self._find(f"{self.form} button[type=submit]")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        return self.site.after(button.click, expect)


class SignupPage(FormPage):
    marker = form = "main form[action='/signup']"
    name = "the sign-up page"

    def sign_up(self, username: str, email: str, password: str,
                password_confirm: str | None = None, expect=None):
        """Fills the form and sends it: returns the page that follows (the form again, with
        errors, when the site refused it)."""
        self.fill(username=username, email=email, password=password,
                  password_confirm=password if password_confirm is None else password_confirm)
        return self._submit(expect or (HomePage, SignupPage, NewListingPage, ListingPage))


class LoginPage(FormPage):
    marker = form = "main form[action='/login']"
    name = "the log-in page"

    @property
    def next_url(self) -> str:
        return self._find(f"{self.form} input[name=next]").get_attribute("value")

    def log_in(self, username: str, password: str, expect=None):
        self.fill(username=username, password=password)
        return self._submit(expect or (HomePage, LoginPage, NewListingPage, ListingPage))


class NewListingPage(FormPage):
    marker = form = "main form[action='/listings/new']"
    name = "the new listing form"

    def publish(self, title: str, price: str, description: str = "", expect=None):
        self.fill(title=title, price=price, description=description)
        return self.send(expect)

    def send(self, expect=None):
        """Sends the form as it is filled: the new listing's page, or the form with errors."""
        return self._submit(expect or (ListingPage, NewListingPage))


class ErrorPage(Page):
    marker = ".error-page"
    name = "an error page"

    @property
    def status(self) -> str:
        return self._find(".error-page .error-code").text.strip()


PAGES = [HomePage, ListingPage, SellerPage, SearchPage, SignupPage, LoginPage, NewListingPage,
         ErrorPage]


class UnexpectedPage(AssertionError):
    pass


def _meanwhile(condition):
    """A wait condition that takes the browser's passing errors while one document replaces
    another (the old one's nodes and script context going away) for "not yet". A browser that
    is gone is still an error at once."""
    def check(driver):
        try:
            return condition(driver)
        except (InvalidSessionIdException, NoSuchWindowException):
            raise
        except WebDriverException:
            return False

    return check


class Site:
    """The marketplace in one browser: opens pages by URL, follows actions to the page they
    load, remembers the response headers of every page load and saves screenshots."""

    def __init__(self, driver, base_url: str, screenshots=None):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self._screenshots = screenshots  # conftest.Screenshots, or None
        self.responses: list[Response] = []

    # --- going places -------------------------------------------------------------------------
    def url(self, path: str, **query) -> str:
        query = {key: value for key, value in query.items() if value is not None}
        return self.base_url + path + (f"?{urlencode(query)}" if query else "")

    def open(self, path: str, expect=Page, **query):
        self.driver.get(self.url(path, **query))  # returns once the page has loaded
        return self.arrived(expect)

    def open_home(self) -> HomePage:
        return self.open("/", HomePage)

    def open_listing(self, listing_id: int, expect=ListingPage) -> ListingPage:
        return self.open(f"/listings/{listing_id}", expect)

    def open_seller(self, seller_id: int) -> SellerPage:
        return self.open(f"/sellers/{seller_id}", SellerPage)

    def open_search(self, query: str) -> SearchPage:
        return self.open("/search", SearchPage, q=query)

    def open_signup(self) -> SignupPage:
        return self.open("/signup", SignupPage)

    def open_login(self, next_url: str | None = None) -> LoginPage:
        return self.open("/login", LoginPage, next=next_url)

    def open_new_listing(self, expect=NewListingPage):
        return self.open("/listings/new", expect)

    def after(self, action, expect):
        """Does `action` (a click, a key press) that loads another page, and waits for it."""
        # A mark on the current document's window: the next document starts without it. (An
        # element going stale is the usual sign, but while the document is being replaced
        # chromedriver may answer a check of the old element with an "unknown error".)
        self.driver.execute_script("window.__labLeaving = true")
        action()
        WebDriverWait(self.driver, TIMEOUT).until(
            _meanwhile(lambda driver: driver.execute_script(
                "return window.__labLeaving === undefined")),
            f"the page did not change after the action (still at {self.driver.current_url})")
        return self.arrived(expect)

    def arrived(self, expect):
        """Waits until one of the site's pages is rendered; returns its page object if it is
        one of `expect` (a class or a tuple of classes), else fails naming the page it got."""
        expected = expect if isinstance(expect, tuple) else (expect,)

        def known_page(driver):
            if driver.execute_script("return document.readyState") != "complete":
                return False
            for kind in PAGES:
                if driver.find_elements(By.CSS_SELECTOR, kind.marker):
                    return kind
            return False

        try:
            kind = WebDriverWait(self.driver, TIMEOUT).until(_meanwhile(known_page))
        except TimeoutException:
            raise UnexpectedPage(f"no page of the site arrived at {self.driver.current_url} "
                                 f"(title {self.driver.title!r})") from None
        self._record_responses()
        if not any(issubclass(kind, each) for each in expected):
            page = kind(self)
            what = kind.name
            if kind is ErrorPage:
                what += f" ({page.status}: {page.heading})"
            raise UnexpectedPage(f"expected {' or '.join(each.name for each in expected)}, "
                                 f"got {what} at {self.driver.current_url}")
        return kind(self)

    # --- what the browser received ------------------------------------------------------------
    def _record_responses(self) -> None:
        for document in document_responses(self.driver):
            if not document["url"].startswith(self.base_url):
                continue  # about:blank, the new-tab page
            headers = document["headers"]
            self.responses.append(Response(document["url"], document["status"],
                                           headers.get("x-served-by"), headers.get("x-cache")))

    @property
    def last_response(self) -> Response:
        """The page now shown (after redirects: the page they led to)."""
        if not self.responses:
            raise AssertionError("the browser has not received a page of the site yet")
        return self.responses[-1]

    def forget_responses(self) -> None:
        self._record_responses()
        self.responses.clear()

    # --- the visitor ----------------------------------------------------------------------------
    def use_session(self, cookie_name: str, token: str) -> None:
        """Logs the browser in with a token the experience API issued, by setting the cookie
        the log-in form would set (for tests where logging in is not what is tested: it saves
        the form's three page loads)."""
        self.driver.get(self.url("/healthz"))  # a cookie can only be set on a page of its site
        document_responses(self.driver)  # not a page of the site: not remembered
        self.driver.add_cookie({"name": cookie_name, "value": token, "path": "/",
                                "httpOnly": True, "sameSite": "Lax"})

    def forget_visitor(self) -> None:
        """A new anonymous visitor: every cookie of the browser is gone (log-in, CSRF, flash
        messages), as in a fresh browser, which is much slower to start."""
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})

    def javascript(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, name: str, caption: str) -> None:
        if self._screenshots is not None:
            self._screenshots.save(self.driver, name, caption)


