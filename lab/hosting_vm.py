"""Starts a stack from inside the simulated VM: lab.hosting runs it in the VM's network
namespace and cgroups, so that every process the stack starts is born there and stays there.

The stack is the native one (infra.Stack), started exactly as `python -m infra up` starts it.
With --public-web it has the one difference a real VM also has: HAProxy's web frontend listens
on every address of the VM (0.0.0.0), so the "internet" (the host side of the veth pair) can
reach it, while the experience and entity frontends, Redis and the stats page stay on the VM's
own loopback. On the DigitalOcean droplet that is infra/deploy/configure.py's
`--http-bind :80`. Never use it outside a namespace: on this machine it would publish the site.

    ip netns exec labvm python -m lab.hosting_vm --public-web --config-json '{"web": 2, ...}'
"""
from __future__ import annotations

import argparse
import json
import sys

from infra import Stack, StackConfig


class VmStack(Stack):
    """The native stack with the web frontend public, as on a VM."""

    def haproxy_environment(self) -> dict[str, str]:
        env = super().haproxy_environment()
        env["LAB_HAPROXY_WEB_BIND"] = f"0.0.0.0:{self.config.frontend_port('web')}"
        return env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-json", required=True,
                        help="the StackConfig, as StackConfig.to_json() writes it")
    parser.add_argument("--public-web", action="store_true",
                        help="the web frontend on every address (inside a namespace only)")
    args = parser.parse_args(argv)
    config = StackConfig.from_json(json.loads(args.config_json))
    kind = VmStack if args.public_web else Stack
    kind(config, progress=lambda *parts: print(*parts, flush=True)).up()
    return 0


if __name__ == "__main__":
    sys.exit(main())
