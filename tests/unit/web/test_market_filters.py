"""The template filters that format prices, dates and pagination."""
from datetime import timedelta

from django.utils import timezone

from web.templatetags.market import ago, initial, money, monogram, number, page_window, short_date


def test_money_formats_dollars_with_thousands_and_cents():
    assert money("1234.5") == "$1,234.50"
    assert money("0") == "$0.00"
    assert money("1000000.00") == "$1,000,000.00"
    assert money("not a price") == ""


def test_ago_reads_like_a_person_for_the_last_month_then_a_date():
    # timesince joins number and unit with a no-break space: "3 days" never wraps
    now = timezone.now()
    assert ago(now.isoformat()) == "just now"
    assert ago((now - timedelta(days=3, hours=2)).isoformat()) == "3\xa0days ago"
    assert ago((now - timedelta(hours=1)).isoformat()) == "1\xa0hour ago"
    long_ago = now - timedelta(days=400)
    assert ago(long_ago.isoformat()) == short_date(long_ago)
    assert ago("garbage") == ""


def test_short_date_is_month_day_year():
    assert short_date("2026-03-04T10:00:00Z") == "Mar 4, 2026"


def test_initial_is_the_first_letter_or_digit():
    assert initial("  vintage bike") == "V"
    assert initial("<b>") == "?"
    assert initial("") == "?"


def test_page_window_shows_the_ends_and_the_neighbours_with_gaps():
    assert page_window(1, 1) == [1]
    assert page_window(1, 4) == [1, 2, 3, 4]
    assert page_window(6, 20) == [1, None, 4, 5, 6, 7, 8, None, 20]
    assert page_window(20, 20) == [1, None, 18, 19, 20]


def test_monogram_names_the_thing_not_its_adjective():
    assert monogram("Barely used road bike") == "RB"
    assert monogram("Sofa") == "S"
    assert monogram("<>") == "?"


def test_number_separates_thousands():
    assert number(1297) == "1,297"
    assert number(7) == "7"
