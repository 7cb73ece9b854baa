"""What a running stack does, through HAProxy: load balancing, the entity tier kept internal,
access logs, and failover when a web instance is killed while requests flow."""
import re
import threading
import time
import uuid
from collections import Counter

import httpx
import psutil

from infra import Stack
from infra.processes import wait_until

# HAProxy's HTTP log format (option httplog), after the receiver's timestamp:
# 2026-11-30T02:42:51.362 127.0.0.1:38748 [30/Nov/2026:02:42:51.362] web web/web2
#   0/0/0/1/1 200 312 - - ---- 4/4/0/0/0 0/0 "GET /healthz HTTP/1.1"
# https://docs.haproxy.org/2.6/configuration.html#8.2.3
HTTP_LOG_LINE = re.compile(
    r"^\S+ (?P<client>[\d.]+:\d+) \[(?P<accepted>[^\]]+)\] (?P<frontend>\S+) "
    r"(?P<backend>[\w-]+)/(?P<server>\S+) (?P<timers>-?\d+/-?\d+/-?\d+/-?\d+/\d+) "
    r"(?P<status>\d{3}) (?P<bytes>\d+) \S+ \S+ (?P<termination>\S{4}) "
    r"\d+/\d+/\d+/\d+/\d+ \d+/\d+ \"(?P<request>[^\"]*)\"$")


def test_status_shows_every_process_with_its_port_pid_and_health(running_stack):
    statuses = {status.name: status for status in running_stack.status()}
    assert set(statuses) == {"log-receiver", "redis", "entity1", "experience1", "web1", "web2",
                             "haproxy"}
    for status in statuses.values():
        assert status.alive and status.healthy and status.pid, status
    assert statuses["web1"].ports == str(running_stack.config.instance_port("web", 1))
    assert statuses["haproxy"].health == "4/4 servers UP"
    assert statuses["redis"].health == "PONG"


def test_memory_counts_every_process_and_its_children(running_stack):
    memory = running_stack.memory()
    # 2 web + 1 experience + 1 entity instances of a master and one worker, plus redis,
    # haproxy and the log receiver
    assert memory.processes == 11
    assert set(memory.rss_by_name) >= {"web1", "web2", "redis", "haproxy"}
    assert memory.rss == sum(memory.rss_by_name.values())
    assert memory.pss is None or 0 < memory.pss <= memory.rss


def test_consecutive_requests_are_served_by_different_web_instances(running_stack):
    with httpx.Client(base_url=running_stack.web_url, timeout=5) as client:
        replies = [client.get("/healthz") for _ in range(6)]
    served_by = [reply.headers["X-Served-By"] for reply in replies]
    assert all(reply.status_code == 200 for reply in replies)
    assert set(served_by) == {"web1", "web2"}
    assert all(first != second for first, second in zip(served_by, served_by[1:]))
    # HAProxy names the server it chose, and it is the instance that answered
    assert [reply.headers["X-Backend-Server"] for reply in replies] == served_by


def test_the_site_and_the_experience_api_answer_through_haproxy(running_stack):
    page = httpx.get(running_stack.web_url + "/", timeout=10)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    # the experience tier reaches the entity tier through HAProxy, with the service token
    home = httpx.get(running_stack.experience_url + "/exp/v1/home", timeout=10)
    assert home.status_code == 200, home.text
    assert home.json()["ok"] is True
    assert home.headers["X-Served-By"] == "experience1"


def test_public_frontends_refuse_entity_paths_even_with_the_credential(running_stack):
    token = {"X-Service-Token": running_stack.service_token}
    for url in (running_stack.web_url, running_stack.experience_url):
        for path in ("/entity/v1/users", "/entity/v1/listings/1"):
            reply = httpx.get(url + path, headers=token, timeout=5)
            assert reply.status_code == 403, (url, path)
            assert "X-Served-By" not in reply.headers  # HAProxy answered, no instance


def test_the_entity_frontend_requires_the_service_credential(running_stack):
    url = running_stack.entity_url + "/entity/v1/users"
    missing = httpx.get(url, timeout=5)
    wrong = httpx.get(url, headers={"X-Service-Token": "guess"}, timeout=5)
    for reply in (missing, wrong):
        assert reply.status_code == 401
        assert reply.json() == {"ok": False, "error": {
            "code": "unauthorized",
            "message": "The entity API requires the service credential."}}
    right = httpx.get(url, headers={"X-Service-Token": running_stack.service_token}, timeout=5)
    assert right.status_code == 200
    assert right.headers["X-Served-By"] == "entity1"


def test_only_the_experience_and_entity_tiers_hold_the_service_token(running_stack):
    def token_of(name):
        return psutil.Process(running_stack.pid(name)).environ()["LAB_SERVICE_TOKEN"]

    assert token_of("experience1") == running_stack.service_token
    assert token_of("entity1") == running_stack.service_token
    assert token_of("web1") != running_stack.service_token


def test_every_request_is_in_the_access_log_in_http_log_format(running_stack):
    marker = uuid.uuid4().hex
    httpx.get(f"{running_stack.web_url}/healthz?probe={marker}", timeout=5)

    def logged_line():
        return next((line for line in running_stack.logs("access").splitlines()
                     if marker in line), None)

    line = wait_until(logged_line, timeout=5, what="the request in the access log")
    fields = HTTP_LOG_LINE.match(line)
    assert fields, line
    assert fields["frontend"] == "web" and fields["backend"] == "web"
    assert fields["server"] in ("web1", "web2")
    assert fields["status"] == "200"
    assert fields["request"] == f"GET /healthz?probe={marker} HTTP/1.1"
    assert running_stack.haproxy_log_path == running_stack.run_dir / "haproxy.log"


def test_logs_returns_a_process_output(running_stack):
    assert "Ready to accept connections" in running_stack.logs("redis")
    assert running_stack.logs("web1", lines=5) is not None


def test_attach_finds_the_running_stack_and_reuse_leaves_it_running(running_stack):
    attached = Stack.attach(running_stack.run_dir, progress=None)
    assert attached is not None
    assert attached.config == running_stack.config
    assert attached.web_url == running_stack.web_url
    with Stack(running_stack.config, progress=None).running(reuse=True) as reused:
        assert reused.pid("haproxy") == running_stack.pid("haproxy")
    assert running_stack.is_alive("haproxy")  # leaving the block did not stop it


def test_a_killed_web_instance_leaves_rotation_at_once_and_gets_requests_again_after_restart(
        running_stack):
    stack = running_stack
    stop = threading.Event()
    outcomes, served_by = Counter(), Counter()
    lock = threading.Lock()

    def requests_flow():
        deadline = time.monotonic() + 60  # bounded, whatever happens to the test
        with httpx.Client(base_url=stack.web_url, timeout=5) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    reply = client.get("/healthz")
                    outcome, instance = reply.status_code, reply.headers.get("X-Served-By")
                except httpx.HTTPError as error:
                    outcome, instance = type(error).__name__, None
                with lock:
                    outcomes[outcome] += 1
                    served_by[instance] += 1

    flows = [threading.Thread(target=requests_flow) for _ in range(3)]
    for flow in flows:
        flow.start()
    try:
        wait_until(lambda: sum(outcomes.values()) >= 50, timeout=10, what="requests flowing")
        stack.kill("web1")
        detected = stack.wait_for_server_state("web1", "DOWN", timeout=5)
        assert detected < 2.0, f"HAProxy took {detected:.2f} s to take web1 out"
        with lock:
            served_by.clear()
        before = sum(outcomes.values())
        wait_until(lambda: sum(outcomes.values()) >= before + 100, timeout=20,
                   what="requests after the kill")
        with lock:
            assert set(served_by) == {"web2"}, served_by  # nothing is sent to web1

        stack.restart("web1")  # waits until web1 is healthy and UP in HAProxy again
        assert stack.server_states()["web1"] == "UP"
        wait_until(lambda: served_by["web1"] > 0, timeout=20,
                   what="requests served by the restarted web1")
    finally:
        stop.set()
        for flow in flows:
            flow.join()
    assert set(outcomes) == {200}, f"requests failed: {outcomes}"
