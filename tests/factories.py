"""Rows for tests that run the tiers in process: a user with a real (hashed) password and a
listing, on the throwaway test database. The suites' conftests wrap them in fixtures with
their own defaults."""
from decimal import Decimal

STRONG_PASSWORD = "a sturdy passphrase 42"


def new_user(username, password=STRONG_PASSWORD, **fields):
    from entity.models import User

    user = User(username=username, email=f"{username}@example.com",
                display_name=fields.pop("display_name", username.title()), **fields)
    user.set_password(password)
    user.save()
    return user


def new_listing(title, price, description, seller=None, **fields):
    """A listing; without a seller, by a new user of its own."""
    from entity.models import Listing

    seller = seller or new_user(f"seller{Listing.objects.count() + 1}")
    return Listing.objects.create(title=title, price=Decimal(price), seller=seller,
                                  description=description, **fields)
