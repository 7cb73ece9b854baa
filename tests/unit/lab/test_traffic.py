"""lab.traffic: the step-load schedule, popularity and reading the site's pages (what the
locustfile relies on, tested without locust)."""
import random

import pytest

from lab import traffic


def test_step_load_warms_up_then_adds_users_step_by_step():
    shape = traffic.StepLoad(step_users=10, step_seconds=15, max_users=40, warmup_seconds=10)
    stages = shape.stages()
    assert [(s.phase, s.users) for s in stages] == [
        ("warmup", 10), ("step", 10), ("step", 20), ("step", 30), ("step", 40)]
    assert stages[1].start_s == 10 and stages[-1].end_s == 70 == shape.duration_s


def test_step_load_ends_on_max_users_even_when_steps_do_not_divide_it():
    shape = traffic.StepLoad(step_users=15, step_seconds=4, max_users=40, warmup_seconds=0)
    assert [s.users for s in shape.stages()] == [15, 30, 40]


def test_the_shape_answers_each_moment_with_its_users_and_none_at_the_end():
    shape = traffic.StepLoad(step_users=5, step_seconds=2, max_users=10, warmup_seconds=1,
                             spawn_rate=5)
    assert shape.users_at(0.5) == (5, 5.0)
    assert shape.users_at(3.5) == (10, 5.0)
    assert shape.users_at(5.0) is None


def test_step_load_goes_through_the_environment_unchanged():
    shape = traffic.StepLoad(step_users=7, step_seconds=3.5, max_users=21, warmup_seconds=2,
                             warmup_users=3, spawn_rate=9)
    assert traffic.StepLoad.from_env(shape.to_env()) == shape
    assert traffic.StepLoad.from_env({}) == traffic.StepLoad()


def test_a_step_load_needs_sensible_numbers():
    with pytest.raises(ValueError):
        traffic.StepLoad(step_users=10, max_users=5)
    with pytest.raises(ValueError):
        traffic.StepLoad(step_seconds=0)


def test_constant_load_is_one_measured_step():
    stages = traffic.constant_load(25, 10, warmup_seconds=3).stages()
    assert [(s.phase, s.users, s.end_s - s.start_s) for s in stages] == [
        ("warmup", 25, 3), ("step", 25, 10)]


def test_think_time_comes_from_the_environment():
    assert traffic.think_time({"LOAD_WAIT": "0.2,0.8"}) == (0.2, 0.8)
    assert traffic.think_time({"LOAD_WAIT": "0"}) == (0.0, 0.0)
    assert traffic.think_time({}, default=(1, 2)) == (1, 2)
    with pytest.raises(ValueError):
        traffic.think_time({"LOAD_WAIT": "3,1"})


def test_popularity_is_skewed_toward_a_few_items():
    popularity = traffic.Popularity(range(1, 201), exponent=1.0, seed=7)
    rng = random.Random(1)
    picks = [popularity.pick(rng) for _ in range(20000)]
    top10 = set(popularity.items[:10])
    share = sum(pick in top10 for pick in picks) / len(picks)
    assert share == pytest.approx(popularity.share_of_top(10), abs=0.02)
    assert 0.4 < share < 0.6
    # the most popular item is not simply the lowest id
    assert popularity.items[:10] != list(range(1, 11))


def test_popularity_needs_something_to_choose_from():
    with pytest.raises(ValueError):
        traffic.Popularity([])


PAGE = """<a class="thumb" href="/listings/42">x</a><a href="/listings/42">t</a>
<a href="/sellers/7">Ann</a><a href="/listings/9">u</a><a href="/sellers/3">Bo</a>
<p class="muted">@ann_smith · member since Jan 2025 · 12 listings for sale</p>
<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="abc&amp;123">
"""


def test_ids_and_usernames_are_read_from_the_sites_pages():
    assert traffic.listing_ids(PAGE) == [42, 9]
    assert traffic.seller_ids(PAGE) == [7, 3]
    assert traffic.seller_username(PAGE) == "ann_smith"
    assert traffic.csrf_token(PAGE) == "abc&123"
    assert traffic.csrf_token("<form></form>") is None


def test_a_page_is_judged_by_its_content_not_its_status():
    good = '<h1 class="listing-title">Desk</h1><p class="price price-lg">$5</p>'
    assert traffic.page_problem(good, "listing") is None
    assert "lacks" in traffic.page_problem("<html>empty</html>", "listing")
    error = '<section class="error-page"><p class="error-code">503</p></section>'
    assert "error page" in traffic.page_problem(error + good, "listing")
