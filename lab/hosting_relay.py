"""A TCP relay that adds network delay: the path between the load generator and the simulated VM.

Why a relay and not netem: the kernel of this machine has no netem qdisc (`tc qdisc add ...
netem` fails with "Specified qdisc kind is unknown"), and the lab must run where it is. A relay
in user space does what matters for an HTTP load test: every byte that crosses it waits a
one-way delay (with jitter) in each direction, in order, as on a long TCP path; and a new
connection waits one round trip before its first request goes out, as the TCP handshake
would. What it does not model (and a droplet's path rarely shows for small pages): loss,
bandwidth limits, reordering. `lab.hosting.measure_rtt` measures what it really adds.

Run it in-process (tests: `async with DelayRelay(...)`, or `RelayThread`), or as a process
(the experiment, so its CPU is its own and it is stopped by pid):

    python -m lab.hosting_relay --listen 127.0.0.1:9080 --target 198.18.0.2:8000 \\
        --delay-ms 20 --jitter-ms 5
"""
from __future__ import annotations

import argparse
import asyncio
import random
import signal
import threading
import time
from dataclasses import dataclass

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Delay:
    """One-way delay of each direction: uniformly `ms` ± `jitter_ms`, never below zero."""
    ms: float = 20.0
    jitter_ms: float = 5.0

    def __post_init__(self):
        if self.ms < 0 or self.jitter_ms < 0:
            raise ValueError("delay and jitter must not be negative")

    def sample_s(self, rng: random.Random) -> float:
        return max(0.0, self.ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000


class _Pipe:
    """One direction of one connection: chunks are released in arrival order, each no earlier
    than its arrival plus a fresh delay sample (a later chunk with a smaller sample waits for
    the one before it: TCP delivers in order)."""

    def __init__(self, reader, writer, delay: Delay, rng: random.Random, ready_at: float = 0.0):
        self.reader, self.writer, self.delay, self.rng = reader, writer, delay, rng
        self.queue: asyncio.Queue = asyncio.Queue()
        self.ready_at = ready_at  # nothing can be sent before the handshake is done
        self.last_release = 0.0

    async def read(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.reader.read(CHUNK)
                sent = max(loop.time(), self.ready_at)
                release = max(sent + self.delay.sample_s(self.rng), self.last_release)
                self.last_release = release
                await self.queue.put((release, data))
                if not data:  # end of stream travels (and waits) like data
                    return
        except (ConnectionError, OSError):
            await self.queue.put((self.last_release, b""))

    async def write(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                release, data = await self.queue.get()
                wait = release - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.writer.write(data)
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass


class DelayRelay:
    """Listens on (host, port) and relays each connection to `target`, delaying both ways.

        async with DelayRelay(("127.0.0.1", 0), ("198.18.0.2", 8000), Delay(20, 5)) as relay:
            relay.port  # where to connect
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], up: Delay,
                 down: Delay | None = None, *, seed: int | None = None,
                 connect_timeout: float = 5.0):
        self.listen, self.target = listen, target
        self.up, self.down = up, down or up  # up: client -> server, down: server -> client
        self.rng = random.Random(seed)
        self.connect_timeout = connect_timeout
        self.server: asyncio.base_events.Server | None = None
        self.connections = 0
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def start(self) -> "DelayRelay":
        self.server = await asyncio.start_server(self._serve, *self.listen, backlog=1024)
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()

    async def _serve(self, client_reader, client_writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        self.connections += 1
        loop = asyncio.get_running_loop()
        # The handshake the client did with this relay took no time; on the simulated path
        # it takes a round trip (SYN out, SYN-ACK back) before the request can leave.
        handshake_done = loop.time() + self.up.sample_s(self.rng) + self.down.sample_s(self.rng)
        server_writer = None
        try:
            server_reader, server_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), self.connect_timeout)
            upstream = _Pipe(client_reader, server_writer, self.up, self.rng, handshake_done)
            downstream = _Pipe(server_reader, client_writer, self.down, self.rng)
            await asyncio.gather(upstream.read(), upstream.write(), downstream.read(),
                                 downstream.write())
        except (OSError, asyncio.TimeoutError):
            pass  # target unreachable: the client sees its connection closed
        except asyncio.CancelledError:
            pass  # the relay is closing: end quietly (asyncio logs a cancelled handler task)
        finally:
            for writer in (client_writer, server_writer):
                if writer is not None:
                    writer.close()
            self._tasks.discard(task)


class RelayThread:
    """A DelayRelay on its own event loop in a background thread, for synchronous callers
    (tests, a notebook cell) that must not touch the caller's loop."""

    def __init__(self, target: tuple[str, int], up: Delay, down: Delay | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, seed: int | None = None):
        self._args = ((host, port), target, up, down)
        self._seed = seed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.relay: DelayRelay | None = None

    def __enter__(self) -> "RelayThread":
        self._thread.start()
        self.relay = asyncio.run_coroutine_threadsafe(
            DelayRelay(*self._args, seed=self._seed).start(), self._loop).result(10)
        return self

    def __exit__(self, *exc):
        try:
            asyncio.run_coroutine_threadsafe(self.relay.close(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    @property
    def port(self) -> int:
        return self.relay.port


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _main(args) -> None:
    relay = DelayRelay(_address(args.listen), _address(args.target),
                       Delay(args.delay_ms, args.jitter_ms),
                       Delay(args.down_delay_ms if args.down_delay_ms is not None
                             else args.delay_ms, args.jitter_ms), seed=args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with relay:
        print(f"relaying {args.listen} -> {args.target}, one-way {args.delay_ms} ms "
              f"± {args.jitter_ms} ms", flush=True)
        if args.max_seconds:
            await asyncio.wait([asyncio.ensure_future(stop.wait())], timeout=args.max_seconds)
        else:
            await stop.wait()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="host:port to listen on")
    parser.add_argument("--target", required=True, help="host:port to relay to")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="one-way delay, client "
                        "to server (and back, unless --down-delay-ms)")
    parser.add_argument("--down-delay-ms", type=float, default=None)
    parser.add_argument("--jitter-ms", type=float, default=5.0, help="± uniform jitter")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="stop by itself after this long (0: never)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    asyncio.run(_main(args))
    print(f"relay stopped after {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
