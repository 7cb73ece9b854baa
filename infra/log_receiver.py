"""A tiny syslog receiver: HAProxy sends its access log over UDP, this writes it to a file.

HAProxy cannot write a log file itself, and `log stdout` only works while it runs in the
foreground; a UDP target works in every mode. Each datagram is one log line (haproxy.cfg asks
for the raw format, without a syslog header; a `<PRI>` prefix, if any, is dropped). Each line
is written with the time it arrived, to the millisecond, so server state changes ("Server
web/web1 is DOWN") can be timed too, and appended as it arrives (line-buffered, so readers see
each request at once):

    2026-11-30T02:42:51.362 127.0.0.1:38748 [30/Nov/2026:02:42:51.362] web web/web2 0/0/0/1/1 200 ...

    python -m infra.log_receiver --port 8514 --output data/state/haproxy.log
"""
import argparse
import re
import signal
import socket
import sys
from datetime import datetime

PRIORITY = re.compile(rb"^<\d{1,3}>")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    # SIGTERM (from `down`) ends the loop through SystemExit, so the file is closed cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((args.host, args.port))
    with open(args.output, "a", buffering=1, encoding="utf-8", errors="replace") as output:
        while True:
            datagram, _ = receiver.recvfrom(65535)
            line = PRIORITY.sub(b"", datagram).rstrip(b"\r\n\x00")
            received = datetime.now().isoformat(timespec="milliseconds")
            output.write(f"{received} {line.decode('utf-8', 'replace')}\n")


if __name__ == "__main__":
    main()
