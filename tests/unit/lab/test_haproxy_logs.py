"""lab.haproxy_logs on lines recorded from the load-balancing notebook's run
(tests/unit/lab/samples/haproxy_lb.log, copied from a run's haproxy.log as the stack's log
receiver wrote them): requests of every frontend, retries with redispatch, the naive
configuration's 503s, 429s from the log-in rate limit, server state changes, and a line that is
neither."""
from pathlib import Path

import pandas as pd

from lab import haproxy_logs

SAMPLE = Path(__file__).parent / "samples" / "haproxy_lb.log"
LINES = SAMPLE.read_text().splitlines()


def test_every_request_line_is_parsed_and_other_lines_are_skipped():
    frame = haproxy_logs.requests_frame(LINES)
    events = haproxy_logs.events_frame(LINES)
    assert len(frame) == 10
    assert len(events) == 2
    assert len(frame) + len(events) == len(LINES) - 1  # "Proxy web stopped" is neither


def test_a_request_line_gives_its_timers_status_server_and_request():
    row = haproxy_logs.parse_request(LINES[1])
    assert (row["frontend"], row["backend"], row["server"]) == ("web", "web", "web2")
    assert [row[f"{timer}_ms"] for timer in haproxy_logs.TIMERS] == [0, 0, 0, 2264, 2264]
    assert (row["status"], row["bytes"], row["termination"]) == (200, 9865, "----")
    assert (row["method"], row["path"], row["http_version"]) == ("GET", "/search", "HTTP/1.1")
    assert (row["client"], row["client_port"]) == ("127.0.0.1", 40288)
    assert row["accepted"] == pd.Timestamp("2026-11-30 03:17:19.267")
    assert row["received"] == pd.Timestamp("2026-11-30 03:17:21.533")
    # accepted at 19.267, answered 2264 ms later, received by the log server at 21.533
    assert abs(row["received_epoch"] - row["accepted_epoch"] - 2.266) < 1e-6


def test_a_redispatched_retry_is_told_from_a_retry_on_the_same_server():
    frame = haproxy_logs.requests_frame(LINES).set_index("client_port")
    redispatched = frame.loc[47380]
    assert (redispatched["retries"], redispatched["redispatched"]) == (1, True)
    assert redispatched["Tw_ms"] == 67 and redispatched["status"] == 200
    naive = frame.loc[51814]  # the naive config: three retries on the dead server, then 503
    assert (naive["retries"], naive["redispatched"]) == (3, False)
    assert (naive["status"], naive["termination"]) == (503, "SC--")
    assert (naive["Tc_ms"], naive["Tr_ms"], naive["Ta_ms"]) == (-1, -1, 3009)


def test_requests_refused_by_a_rule_have_no_server():
    frame = haproxy_logs.requests_frame(LINES)
    refused = frame[frame["status"] == 429]
    assert len(refused) == 2
    assert set(refused["server"]) == {"<NOSRV>"} and set(refused["termination"]) == {"PR--"}
    assert set(refused["method"] + " " + refused["path"]) == {"POST /login"}


def test_server_state_changes_are_events_with_their_reason():
    events = haproxy_logs.events_frame(LINES)
    assert list(events["state"]) == ["DOWN", "UP"]
    assert set(events["server"]) == {"web1"} and set(events["backend"]) == {"web"}
    assert events.loc[0, "reason"] == 'Layer4 connection problem, info: "Connection refused"'
    assert events.loc[1, "reason"] == "Layer7 check passed"


def test_per_server_counts_each_server_of_one_frontend_and_the_refused_apart():
    table = haproxy_logs.per_server(haproxy_logs.requests_frame(LINES)).set_index("server")
    assert table["requests"].to_dict() == {"<NOSRV>": 2, "web1": 3, "web2": 3}
    assert table.loc["web1", "errors"] == 2 and table.loc["web2", "errors"] == 0
    assert table.loc["web2", "retried"] == 2
    assert abs(table["share"].sum() - 1) < 0.01
    # the response time Tr only of requests a server answered (the 503s have Tr = -1)
    assert table.loc["web1", "Tr_mean_ms"] == 7.0
    assert pd.isna(table.loc["<NOSRV>", "Tr_mean_ms"])


def test_termination_states_are_counted_and_explained():
    counts = haproxy_logs.termination_counts(haproxy_logs.requests_frame(LINES))
    by_state = counts.set_index(["termination", "status"])["requests"].to_dict()
    assert by_state == {("----", 200): 4, ("SC--", 503): 2, ("PR--", 429): 2}
    assert haproxy_logs.explain_termination("SC--") == (
        "the server aborted or refused, while connecting to the server")
    assert haproxy_logs.explain_termination("----") == "normal end"


def test_sample_lines_pick_one_line_of_each_kind():
    samples = haproxy_logs.sample_lines(LINES)
    assert set(samples) == {"served by web1", "served by web2", "retried on another server",
                            "error 503 (SC--)", "rate limited (429)", "server DOWN",
                            "server UP"}
    assert all(len(lines) == 1 for lines in samples.values())
    assert "9/8/4/1/+1" in samples["retried on another server"][0]


def test_the_cursor_reads_only_complete_lines_added_since_it_was_made(tmp_path):
    log = tmp_path / "haproxy.log"
    log.write_text(LINES[0] + "\n")
    cursor = haproxy_logs.LogCursor(log)
    with open(log, "a") as handle:
        handle.write(LINES[1] + "\n" + LINES[2][:40])  # the receiver is mid-line
    assert cursor.read() == [LINES[1]]
    with open(log, "a") as handle:
        handle.write(LINES[2][40:] + "\n")
    assert cursor.read() == [LINES[2]]
    assert cursor.read() == []


def test_the_cursor_waits_for_the_lines_it_is_told_to_expect_but_not_forever(tmp_path):
    log = tmp_path / "haproxy.log"
    log.write_text("")
    cursor = haproxy_logs.LogCursor(log)
    log.write_text(LINES[0] + "\n")
    lines = cursor.read(wait_for=lambda got: haproxy_logs.count_requests(got) >= 2,
                        timeout=0.2)
    assert lines == [LINES[0]]  # only one of the two came: returned at the deadline
    assert haproxy_logs.count_requests(LINES) == 8  # the web frontend's lines only
