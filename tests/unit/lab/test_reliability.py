"""The fault experiments' bookkeeping (lab/reliability.py): the write accounting, the table row
of a fault from what the clients saw, the targets, the figure, and the traffic itself against a
small local server (no stack)."""
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pandas as pd
import pytest

from lab import reliability
from lab.profiles import chosen, not_run
from lab.reliability import Call, Fault, Targets

EVENTS = {"inject": 2.0, "injected": 2.1, "repair": 8.0, "restored": 9.5, "end": 12.0}


def fault(**changes):
    values = dict(key="kill_web1", name="web1 killed", inject=None, repair=None,
                  single_instance=True)
    values.update(changes)
    return Fault(**values)


def frame(calls):
    data = pd.DataFrame([call.__dict__ for call in calls])
    data["ok"] = [call.ok for call in calls]
    return data


def write(title, status, start=1.0):
    return Call("write", "POST", "/exp/v1/listings", start, 0.05, status, title=title)


def page(start, status=200, seconds=0.02, kind="page", cache=""):
    return Call(kind, "GET", "/", start, seconds, status, cache=cache)


# --- writes ---------------------------------------------------------------------------------

def test_acknowledged_writes_stored_once_are_neither_lost_nor_duplicated():
    calls = [write("a", 201), write("b", 201)]
    counts = reliability.write_accounting(calls, Counter({"a": 1, "b": 1}))
    assert counts["acknowledged"] == 2 and counts["lost"] == 0 and counts["duplicated"] == 0


def test_an_acknowledged_write_missing_from_the_database_is_lost():
    counts = reliability.write_accounting([write("a", 201)], Counter())
    assert counts["lost"] == 1


def test_a_title_stored_twice_is_a_duplicate_whether_acknowledged_or_not():
    calls = [write("a", 201), write("b", 503)]
    counts = reliability.write_accounting(calls, Counter({"a": 2, "b": 2}))
    assert counts["duplicated"] == 2


def test_a_failed_write_stored_once_is_counted_but_allowed():
    counts = reliability.write_accounting([write("a", 503), write("b", 0)], Counter({"a": 1}))
    assert counts["unacknowledged"] == 2 and counts["unacknowledged_stored"] == 1
    assert counts["lost"] == 0 and counts["duplicated"] == 0


# --- one fault's row ------------------------------------------------------------------------

def test_a_fault_without_client_errors_recovers_when_the_part_is_back():
    calls = [page(1.0), page(3.0), page(9.0), write("a", 201)]
    row = reliability.summarize(fault(), frame(calls), EVENTS,
                                reliability.write_accounting(calls, Counter({"a": 1})))
    assert row["get_errors"] == row["post_errors"] == row["http_5xx"] == 0
    assert row["error_window_s"] == 0.0
    assert row["recovery_s"] == 1.5  # restored - repair
    assert row["acknowledged"] == 1 and row["lost"] == 0


def test_errors_after_the_repair_lengthen_the_recovery():
    calls = [page(3.0, 503), page(10.0, 502, seconds=0.5), page(11.0), write("a", 0, start=4)]
    row = reliability.summarize(fault(), frame(calls), EVENTS,
                                reliability.write_accounting(calls, Counter()))
    assert row["get_errors"] == 2 and row["post_errors"] == 1
    assert row["http_5xx"] == 2 and row["no_answer"] == 1
    assert row["recovery_s"] == 2.5  # the last failure ended at 10.5, the repair was at 8
    assert row["error_window_s"] == 7.5  # from 3.0 to 10.5


def test_an_outage_row_says_how_many_cached_pages_were_served_and_how_fast_others_failed():
    calls = [page(3.0, kind="cached", cache="HIT"), page(4.0, kind="cached", cache="STALE"),
             page(5.0, 503, kind="cached", cache="MISS"),
             page(3.5, 503, seconds=0.1, kind="fresh"), page(4.5, 503, seconds=0.3, kind="fresh"),
             page(1.0, kind="fresh")]  # before the fault: not counted
    row = reliability.summarize(fault(mix={"cached": 0.5, "fresh": 0.5}, single_instance=False),
                                frame(calls), EVENTS,
                                reliability.write_accounting(calls, Counter()))
    assert (row["cached_served"], row["cached_requests"], row["cached_from_cache"]) == (2, 3, 2)
    assert (row["fresh_503"], row["fresh_requests"]) == (2, 2)
    assert row["fresh_503_max_s"] == 0.3


def test_the_targets_look_only_at_single_instance_faults_for_get_errors():
    table = pd.DataFrame([
        {"key": "kill_web1", "single_instance": True, "get_errors": 0, "lost": 0,
         "duplicated": 0, "acknowledged": 10},
        {"key": "entity_tier", "single_instance": False, "get_errors": 40, "lost": 0,
         "duplicated": 0, "acknowledged": 3}])
    verdicts = reliability.verdicts(table)
    assert verdicts["no_get_errors_when_one_instance_dies"] is True
    assert verdicts["single_instance_faults"] == ["kill_web1"]
    assert verdicts["no_lost_or_duplicated_writes"] is True
    assert verdicts["acknowledged_writes"] == 13
    assert "no_5xx_from_fuzzing" not in verdicts  # no campaign given
    table.loc[0, "lost"] = 1
    assert reliability.verdicts(table)["no_lost_or_duplicated_writes"] is False


@pytest.mark.parametrize("answers_5xx, met", [(0, True), (2, False)])
def test_the_fuzzing_target_is_no_5xx_answer_at_all(answers_5xx, met):
    table = pd.DataFrame([{"key": "redis", "single_instance": False, "get_errors": 0,
                           "lost": 0, "duplicated": 0, "acknowledged": 1}])
    verdicts = reliability.verdicts(table, {"calls": 500, "answers_5xx": answers_5xx})
    assert verdicts["no_5xx_from_fuzzing"] is met and verdicts["fuzz_5xx"] == answers_5xx


def test_every_fault_a_profile_can_name_is_one_the_stack_runs():
    for db in ("sqlite", "postgres"):
        stack = SimpleNamespace(config=SimpleNamespace(db=db))
        keys = [fault.key for fault in reliability.faults(stack)]
        assert [key.removesuffix(f"_{db}") for key in keys] == list(reliability.FAULT_KEYS)


def test_a_profile_names_faults_as_all_a_list_or_commas_and_unknown_ones_are_refused():
    known = reliability.FAULT_KEYS
    assert chosen("all", known) == list(known)
    assert chosen(["entity_tier", "redis"], known) == ["redis", "entity_tier"]  # run order
    assert chosen("kill_web1, database", known) == ["kill_web1", "database"]
    with pytest.raises(ValueError, match="kill_web9"):
        chosen(["kill_web9"], known, "fault")
    assert not_run("quick", "the PostgreSQL outage").startswith("*Left out in the quick profile")


def test_pages_of_people_who_write_are_not_counted_on_to_stay_cached():
    targets = Targets(listing_ids=[1, 2, 3], seller_ids=[7, 8], tokens=["t"], writer_ids=[7],
                      sellers_of={1: 7, 2: 8, 3: 8})
    assert targets.untouched_pages() == ("/listings/2", "/listings/3", "/sellers/8")


def test_the_timeline_figure_has_a_panel_per_fault(tmp_path):
    calls = frame([page(1.0), page(3.0, 503), write("a", 201)])
    calls["fault"] = "kill_web1"
    row = reliability.summarize(fault(), calls, EVENTS,
                                reliability.write_accounting([], Counter()))
    path = reliability.timeline_figure(calls, pd.DataFrame([row]), tmp_path / "t.png")
    assert path.exists() and path.stat().st_size > 5000


# --- the traffic, against a small local server -------------------------------------------------

class Site(BaseHTTPRequestHandler):
    """Answers pages 200 (every third one 503) and writes 201, remembering the titles."""
    titles, gets = [], 0
    lock = threading.Lock()

    def do_GET(self):
        with Site.lock:
            Site.gets += 1
            status = 503 if Site.gets % 3 == 0 else 200
        self.send_response(status)
        self.send_header("X-Cache", "HIT")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Site.lock:
            Site.titles.append(body["title"])
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    Site.titles, Site.gets = [], 0
    yield SimpleNamespace(web_url=url, experience_url=url)
    server.shutdown()
    server.server_close()


def test_traffic_records_every_request_and_writes_unique_titles(local_site):
    targets = Targets(listing_ids=[1, 2], seller_ids=[3], tokens=["a", "b"])
    with reliability.Traffic(local_site, targets, "unit", readers=2, think=0.01,
                             write_every=0.01) as traffic:
        deadline = time.monotonic() + 20  # a busy machine starts threads slowly
        while time.monotonic() < deadline and not (
                Counter(call.kind for call in traffic.calls) >= Counter(write=3, page=6)):
            traffic.hold(0.05)
        traffic.mark("enough")
    writes = [call for call in traffic.calls if call.kind == "write"]
    pages = [call for call in traffic.calls if call.kind == "page"]
    assert len(writes) >= 3 and len(pages) >= 6 and traffic.events["enough"] > 0
    assert len({call.title for call in writes}) == len(writes)
    assert sorted(Site.titles) == sorted(call.title for call in writes)
    assert all(call.title.startswith(traffic.title_prefix) for call in writes)
    assert {call.status for call in pages} == {200, 503}


def test_traffic_stops_by_itself_at_its_time_bound(local_site):
    targets = Targets(listing_ids=[1], seller_ids=[1], tokens=["a"])
    with reliability.Traffic(local_site, targets, "bounded", readers=1, think=0.01,
                             write_every=0, max_seconds=0.3) as traffic:
        traffic.hold(1.0)
    assert max(call.start for call in traffic.calls) < 0.35
