"""Small stacks for tests: tiny, on free ports, started despite concurrent port grabs."""
import random

from infra import Stack, StackConfig, StackError
from infra.processes import port_is_free

# Offsets stay below 24000 so that no port of a stack is in the kernel's ephemeral range.
OFFSETS = range(10000, 24001, 250)


def small_config(home, run_dir, **overrides) -> StackConfig:
    """One instance per tier, one worker each, the tiny database and secrets of `home`."""
    settings = dict(web=1, experience=1, entity=1, workers=1, threads=4, run_dir=run_dir,
                    sqlite_path=home / "tiny.sqlite3", secrets_dir=home / "secrets",
                    seed_users=10, seed_listings=50,
                    extra_env={"LAB_FAST_HASHER": "1"},  # sign-ups in milliseconds
                    startup_timeout=60)  # generous: a busy machine starts slowly
    settings.update(overrides)
    config = StackConfig(**settings)
    return config.replace(port_offset=free_offset(config))


def free_offset(config: StackConfig) -> int:
    """A random offset at which all of the stack's ports are free (random, so that concurrent
    test sessions rarely pick the same one)."""
    for offset in random.sample(list(OFFSETS), len(OFFSETS)):
        moved = config.replace(port_offset=offset)
        if all(port_is_free(port) for port in moved.tcp_ports()) and port_is_free(
                moved.log_receiver_port, udp=True):
            return offset
    raise StackError("no free port offset")


def start(config: StackConfig, progress=print) -> Stack:
    """Starts a stack, moving it to another free offset when a concurrent process took one of
    its ports between choosing the offset and starting (the error names the taken port)."""
    for attempt in range(3):
        stack = Stack(config, progress=progress)
        try:
            return stack.up()
        except StackError as error:
            if "ports the stack needs are taken" not in str(error) or attempt == 2:
                raise
            config = config.replace(port_offset=free_offset(config))
