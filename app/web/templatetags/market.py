"""Template filters for the marketplace's pages: prices, dates, placeholder colours and
pagination links. Values arrive as the experience tier's JSON (strings for prices and dates)."""
from datetime import datetime, timedelta
from urllib.parse import urlencode
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.timesince import timesince

register = template.Library()


def _datetime(value):
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if isinstance(value, datetime) else None


@register.filter
def money(value):
    """"1234.5" -> "$1,234.50"."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return ""
    return f"${amount:,.2f}"


@register.filter
def number(value):
    """1297 -> "1,297"."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value


@register.filter
def ago(value):
    """"3 days ago" for the last month, else a short date ("Mar 4, 2026")."""
    moment = _datetime(value)
    if moment is None:
        return ""
    age = timezone.now() - moment
    if timedelta(0) <= age < timedelta(minutes=1):
        return "just now"
    if timedelta(0) <= age < timedelta(days=30):
        return f"{timesince(moment, depth=1)} ago"
    return short_date(moment)


@register.filter
def short_date(value):
    moment = _datetime(value)
    if moment is None:
        return ""
    moment = timezone.localtime(moment)
    return f"{moment:%b} {moment.day}, {moment.year}"


@register.filter
def hue(value):
    """A stable colour (0-359) per id for the placeholder pictures (there are no photos)."""
    try:
        return int(value) * 137 % 360
    except (TypeError, ValueError):
        return 210


@register.filter
def initial(value):
    text = str(value or "").strip()
    for word in text.split():
        if word[0].isalnum():
            return word[0].upper()
    return "?"


@register.filter
def monogram(title):
    """The placeholder picture's letters: the initials of a title's last two words, which
    name the thing ("Barely used road bike" -> "RB") better than its adjective does."""
    words = [word for word in str(title or "").split() if word[0].isalnum()]
    return "".join(word[0] for word in words[-2:]).upper() or "?"


@register.filter
def seller_name(person):
    """A seller's display name, else the username (both from the JSON objects)."""
    if not person:
        return ""
    return person.get("display_name") or person.get("username") or ""


@register.simple_tag
def page_url(number, q=""):
    """?q=...&page=N for a pagination link. Built from what the view understood, never by
    copying the request's query: a cached page must not repeat parameters someone else sent
    (the page cache keeps only q and page in its key)."""
    query = {"q": q} if q else {}
    query["page"] = number
    return "?" + urlencode(query)


@register.filter
def page_window(page, pages):
    """Page numbers to show around `page`: 1 … 4 5 [6] 7 8 … 20 (None is a gap)."""
    page, pages = int(page), int(pages)
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    window, previous = [], 0
    for number in shown:
        if number - previous > 1:
            window.append(None)
        window.append(number)
        previous = number
    return window
