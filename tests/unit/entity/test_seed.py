"""The seed command fills an empty database deterministically and leaves a full one alone."""
from io import StringIO

from django.core.management import call_command

from entity.models import Listing, User
from entity.seed import SEED_PASSWORD, seed


def snapshot():
    return (list(User.objects.values_list("username", "display_name").order_by("id")),
            list(Listing.objects.values_list("title", "price", "status").order_by("id")))


def test_seed_fills_the_database_with_the_sizes_asked_for():
    call_command("seed", users=12, listings=80, seed=7, stdout=StringIO())
    assert (User.objects.count(), Listing.objects.count()) == (12, 80)
    assert User.objects.first().check_password(SEED_PASSWORD)


def test_the_same_seed_gives_the_same_data():
    seed(users=10, listings=40, seed=3, progress=lambda line: None)
    first = snapshot()
    Listing.objects.all().delete()
    User.objects.all().delete()
    seed(users=10, listings=40, seed=3, progress=lambda line: None)
    assert snapshot() == first


def test_seed_leaves_a_database_with_users_alone(make_user):
    make_user("existing")
    out = StringIO()
    call_command("seed", users=5, listings=5, stdout=out)
    assert User.objects.count() == 1 and "not seeding" in out.getvalue()


def test_seeded_listings_have_valid_prices_and_titles():
    seed(users=5, listings=60, seed=1, progress=lambda line: None)
    for listing in Listing.objects.all():
        listing.full_clean()  # every model validator holds for generated data
