"""A visitor signs up, logs in and logs out; the forms say what is wrong when something is."""
import uuid

import pytest

from tests.integration.pages import HomePage, LoginPage, NewListingPage, SignupPage

pytestmark = [pytest.mark.browser, pytest.mark.stack]

PASSWORD = "correct horse battery 7"  # passes the entity tier's password validators


def new_username() -> str:
    return f"newcomer_{uuid.uuid4().hex[:10]}"


@pytest.mark.smoke
def test_sign_up_logs_the_new_member_in(site, accounts):
    username = new_username()
    signup = site.open_home().go_to_sign_up()

    home = signup.sign_up(username, f"{username}@example.com", PASSWORD, expect=HomePage)
    accounts.delete_later(home.account_id)

    assert home.logged_in_as == username
    assert any("Your account is ready" in message for message in home.flash_messages)


def test_sign_up_with_a_taken_username_says_so(site, account):
    signup = site.open_signup()

    again = signup.sign_up(account.username, "someone.else@example.com", PASSWORD,
                           expect=SignupPage)

    assert again.errors_for("username") == ["That username is already taken."]
    assert again.value_of("username") == account.username, "what was typed is kept"
    assert again.logged_in_as is None


def test_sign_up_with_a_weak_password_says_why(site):
    signup = site.open_signup()

    again = signup.sign_up(new_username(), "weak@example.com", "password", expect=SignupPage)

    assert again.fields_with_errors == ["password"]
    assert any("too common" in error for error in again.errors_for("password"))
    assert again.value_of("password") == "", "a password is never sent back to the browser"
    assert again.logged_in_as is None


def test_sign_up_with_mismatched_and_missing_fields_marks_each_one(site):
    signup = site.open_signup()

    again = signup.sign_up("x", "not-an-email", PASSWORD, password_confirm=PASSWORD + "!",
                           expect=SignupPage)

    assert set(again.fields_with_errors) == {"username", "email", "password_confirm"}
    assert again.errors_for("password_confirm") == ["The two passwords do not match."]
    assert again.errors_for("email") == ["Enter a valid email address."]
    assert "at least 3 characters" in again.errors_for("username")[0]
    again.screenshot("signup-errors",
                     "The sign-up form marks each field that needs fixing, and says how.")


@pytest.mark.smoke
def test_log_in_with_the_right_password_greets_the_member(site, account):
    login = site.open_home().go_to_log_in()
    login.screenshot("login", "The log-in page.")

    home = login.log_in(account.username, account.password, expect=HomePage)

    assert home.logged_in_as == account.name
    assert any("Welcome back" in message for message in home.flash_messages)


def test_log_in_with_a_wrong_password_is_refused(site, account):
    login = site.open_login()

    again = login.log_in(account.username, "not the password", expect=LoginPage)

    assert again.form_errors == ["Wrong username or password."]
    assert again.value_of("username") == account.username
    assert again.logged_in_as is None


def test_after_logging_out_selling_something_asks_to_log_in_first(site, logged_in):
    home = site.open_home()
    assert home.logged_in_as == logged_in.name

    home = home.log_out()

    assert home.logged_in_as is None
    assert any("Logged out" in message for message in home.flash_messages)

    login = home.sell_something(expect=LoginPage)

    assert login.next_url == "/listings/new"
    # and logging in again leads on to where the visitor was going
    form = login.log_in(logged_in.username, logged_in.password, expect=NewListingPage)
    assert form.logged_in_as == logged_in.name
