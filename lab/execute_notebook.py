"""Execute one notebook with papermill, its kernel talking over Unix sockets instead of TCP:

    python -m lab.execute_notebook IN.ipynb OUT.ipynb --parameters P.json --cwd notebooks \\
        --execution-timeout 900

This is `papermill IN OUT -f P.json --cwd notebooks --execution-timeout 900` with one change
papermill's command line cannot make. Over TCP, jupyter_client picks five free ports and
closes them; the kernel binds them a second later, so two kernels starting together (the
report runs some notebooks side by side) can be handed the same port and one dies before it
answers kernel_info (https://github.com/nteract/papermill/issues/511). Unix sockets in a
directory of this process's own cannot collide, and nothing else on the machine can take them
meanwhile."""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import default


class UnixSocketKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels listen on Unix sockets in a private temporary directory
    (jupyter_client's default for the IPC transport is `kernel-ipc-N` in the working
    directory, shared by every kernel started there)."""

    @default("transport")
    def _transport_default(self):
        return "ipc"

    @default("ip")
    def _ip_default(self):
        self.socket_dir = tempfile.mkdtemp(prefix="lab-kernel-")
        return str(Path(self.socket_dir) / "kernel")

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if not restart and getattr(self, "socket_dir", None):
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lab.execute_notebook",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--parameters", type=Path, help="a JSON file of parameter values")
    parser.add_argument("--cwd", type=Path, help="the kernel's working directory")
    parser.add_argument("--execution-timeout", type=float, help="seconds one cell may take")
    args = parser.parse_args(argv)

    import papermill
    from papermill.exceptions import PapermillExecutionError

    parameters = json.loads(args.parameters.read_text()) if args.parameters else {}
    try:
        papermill.execute_notebook(
            str(args.input), str(args.output), parameters=parameters,
            kernel_name="python3", cwd=str(args.cwd) if args.cwd else None,
            execution_timeout=args.execution_timeout, progress_bar=False,
            kernel_manager_class=UnixSocketKernelManager)
    except PapermillExecutionError as error:
        # the executed notebook holds the failing cell and its traceback; the runner reads it
        print(f"{args.input.name}: cell {error.exec_count} raised {error.ename}: {error.evalue}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
