"""The entity tier's side: every write of a user or listing bumps the tags of the pages that
show it, after its commit and before the write returns, and a write succeeds with Redis down.

These tests use a transactional database: on_commit callbacks run only on a real commit."""
import time
from decimal import Decimal

import pytest
from django.db import transaction

from entity import invalidation
from entity.models import Listing, User
from web.pagecache import tags

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def versions(page_cache):
    client = page_cache.client()

    def read(*names):
        return {name: int(client.get(tags.key(name)) or 0) for name in names}

    return read


def user(name="ada"):
    return User.objects.create(username=name, email=f"{name}@example.com", display_name=name,
                               password="x")


def test_creating_a_listing_bumps_the_lists_its_page_and_its_seller(versions):
    ada = user()
    before = versions("listings", "seller:%d" % ada.pk)
    listing = Listing.objects.create(seller=ada, title="Oak desk", price=Decimal("10"))
    after = versions("listings", f"seller:{ada.pk}", f"listing:{listing.pk}")
    assert after["listings"] > before["listings"]
    assert after[f"seller:{ada.pk}"] > before[f"seller:{ada.pk}"]
    assert after[f"listing:{listing.pk}"] > 0


def test_editing_and_deleting_a_listing_bump_its_tags(versions):
    listing = Listing.objects.create(seller=user(), title="Oak desk", price=Decimal("10"))
    name = f"listing:{listing.pk}"
    first = versions(name)[name]
    listing.title = "Oak desk, barely used"
    listing.save()
    second = versions(name)[name]
    listing.delete()
    assert first < second < versions(name)[name]


def test_a_user_change_bumps_the_user_and_the_lists_that_show_sellers(versions):
    ada = user()
    before = versions("listings", f"user:{ada.pk}")
    ada.display_name = "Ada L."
    ada.save()
    after = versions("listings", f"user:{ada.pk}")
    assert after["listings"] > before["listings"] and after[f"user:{ada.pk}"] > before[
        f"user:{ada.pk}"]


def test_deleting_a_user_bumps_each_of_their_listings_too(versions):
    ada = user()
    listings = [Listing.objects.create(seller=ada, title=f"Thing {n}", price=Decimal("1"))
                for n in range(3)]
    names = [f"listing:{listing.pk}" for listing in listings]
    before = versions(*names)
    ada.delete()
    after = versions(*names)
    assert all(after[name] > before[name] for name in names)


def test_moving_a_listing_to_another_seller_bumps_both_sellers(versions):
    ada, bob = user("ada"), user("bob")
    listing = Listing.objects.create(seller=ada, title="Oak desk", price=Decimal("10"))
    before = versions(f"seller:{ada.pk}", f"seller:{bob.pk}")
    listing.seller = bob
    listing.save()
    after = versions(f"seller:{ada.pk}", f"seller:{bob.pk}")
    assert all(after[name] > before[name] for name in after)


def test_tags_are_bumped_after_the_commit_not_inside_the_transaction(versions):
    ada = user()
    with transaction.atomic():
        Listing.objects.create(seller=ada, title="Oak desk", price=Decimal("10"))
        inside = versions("listings")
        Listing.objects.create(seller=ada, title="Pine desk", price=Decimal("10"))
        assert versions("listings") == inside  # a render now would read the old data
    after = versions("listings")
    assert after["listings"] > inside["listings"]


def test_one_transaction_bumps_its_tags_in_one_round_trip(versions, page_cache):
    ada = user()
    clock = int(page_cache.client().get(tags.CLOCK) or 0)
    with transaction.atomic():
        for n in range(5):
            Listing.objects.create(seller=ada, title=f"Thing {n}", price=Decimal("1"))
    assert int(page_cache.client().get(tags.CLOCK)) == clock + 1


def test_a_rolled_back_write_bumps_nothing(versions):
    ada = user()
    before = versions("listings")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Listing.objects.create(seller=ada, title="Oak desk", price=Decimal("10"))
            raise RuntimeError("changed my mind")
    assert versions("listings") == before


def test_view_counts_are_not_content_and_bump_nothing(versions):
    listing = Listing.objects.create(seller=user(), title="Oak desk", price=Decimal("10"))
    before = versions("listings", f"listing:{listing.pk}")
    from entity import services

    services.record_view(listing.pk)
    assert versions("listings", f"listing:{listing.pk}") == before


def test_other_cache_modes_do_not_talk_to_redis(versions, settings, page_cache):
    settings.CACHE_MODE = "ttl"
    page_cache.stop()
    Listing.objects.create(seller=user(), title="Oak desk", price=Decimal("10"))
    assert invalidation.lost_bumps() == 0


def test_a_write_succeeds_with_redis_down_and_every_page_is_invalidated_when_it_returns(
        versions, page_cache):
    ada = user()
    epoch = versions(tags.EPOCH)[tags.EPOCH]
    page_cache.stop()
    start = time.perf_counter()
    listing = Listing.objects.create(seller=ada, title="Oak desk", price=Decimal("10"))
    assert time.perf_counter() - start < 0.5  # no long stall for the writer
    assert Listing.objects.filter(pk=listing.pk).exists()
    assert invalidation.lost_bumps() == 1
    page_cache.start()
    # The retry thread bumps the epoch as soon as Redis answers again.
    deadline = time.monotonic() + 5
    while invalidation.lost_bumps():
        assert time.monotonic() < deadline, "the lost invalidation was never made up for"
        time.sleep(0.02)
    assert versions(tags.EPOCH)[tags.EPOCH] > epoch


def test_the_next_write_after_an_outage_carries_the_epoch(versions, page_cache):
    ada = user()
    page_cache.stop()
    Listing.objects.create(seller=ada, title="Oak desk", price=Decimal("10"))
    invalidation.stop_retry()  # leave the make-up to the next write
    page_cache.start()
    from web.pagecache import conn

    conn.reset()
    Listing.objects.create(seller=ada, title="Pine desk", price=Decimal("10"))
    assert invalidation.lost_bumps() == 0
    assert versions(tags.EPOCH)[tags.EPOCH] > 0


def test_invalidate_everything_bumps_the_epoch(versions):
    before = versions(tags.EPOCH)[tags.EPOCH]
    invalidation.invalidate_everything()
    assert versions(tags.EPOCH)[tags.EPOCH] > before
