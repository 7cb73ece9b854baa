"""The delay relay (lab/hosting_relay.py) carries bytes unchanged and in order, and makes each
round trip take at least the configured delay: these tests assert lower bounds only (a slow
machine may add more; it can never add less)."""
import random
import socket
import threading
import time

import pytest

from lab.hosting_relay import Delay, RelayThread


@pytest.fixture(autouse=True)
def tiers_in_process():
    """The relay needs no database (this overrides tests/unit's autouse fixture)."""
    yield


@pytest.fixture
def echo_server():
    """A TCP echo server on 127.0.0.1 that runs until the test ends."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(connection):
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()
    stop.set()
    thread.join(5)
    server.close()


def exchange(connection: socket.socket, payload: bytes) -> tuple[bytes, float]:
    started = time.perf_counter()
    connection.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return received, (time.perf_counter() - started) * 1000


def test_a_round_trip_through_the_relay_takes_at_least_both_one_way_delays(echo_server):
    with RelayThread(echo_server, Delay(ms=15, jitter_ms=3), seed=1) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as connection:
            exchange(connection, b"warm-up")
            times = [exchange(connection, b"ping")[1] for _ in range(10)]
    assert min(times) >= 2 * (15 - 3) - 1  # 1 ms of slack for timer granularity


def test_the_first_exchange_of_a_new_connection_also_waits_for_the_handshake(echo_server):
    with RelayThread(echo_server, Delay(ms=15, jitter_ms=0), seed=1) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as connection:
            _, first = exchange(connection, b"hello")
    # SYN out, SYN-ACK back, then the data out and its echo back: two round trips
    assert first >= 4 * 15 - 1


def test_the_relay_delivers_every_byte_unchanged_and_in_order(echo_server):
    payload = random.Random(3).randbytes(300_000)  # many chunks, each with its own jitter
    with RelayThread(echo_server, Delay(ms=2, jitter_ms=2), seed=2) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as connection:
            received, _ = exchange(connection, payload)
    assert received == payload


def test_each_direction_can_have_its_own_delay(echo_server):
    with RelayThread(echo_server, Delay(ms=5, jitter_ms=0), Delay(ms=30, jitter_ms=0),
                     seed=1) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as connection:
            exchange(connection, b"warm-up")
            _, rtt = exchange(connection, b"ping")
    assert rtt >= 5 + 30 - 1


def test_a_client_of_an_unreachable_target_sees_its_connection_closed():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        target = unused.getsockname()  # bound, never listening: connections are refused
        with RelayThread(target, Delay(ms=1, jitter_ms=0)) as relay:
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as client:
                client.settimeout(5)
                assert client.recv(10) == b""


def test_a_delay_cannot_be_negative():
    with pytest.raises(ValueError):
        Delay(ms=-1)


def test_jitter_never_makes_a_delay_negative():
    rng = random.Random(0)
    assert min(Delay(ms=1, jitter_ms=5).sample_s(rng) for _ in range(1000)) >= 0
