"""The stack on one machine: start, stop, inspect and break the marketplace's processes
(Redis, the database, each tier's gunicorn instances, HAProxy) for the browser, the tests and
the notebooks. `python -m infra --help` for the command line; from Python:

    from infra import Stack, StackConfig
    with Stack(StackConfig(web=2, experience=2, entity=2)).running() as stack:
        stack.web_url, stack.instances("web"), stack.kill("web1"), stack.restart("web1")
"""
from .config import StackConfig
from .processes import StackError
from .stack import (Instance, Memory, ProcessStatus, Stack, StackAlreadyRunning,
                    free_port_offset, stop_everything)

__all__ = ["Instance", "Memory", "ProcessStatus", "Stack", "StackAlreadyRunning", "StackConfig",
           "StackError", "free_port_offset", "stop_everything"]
