"""python -m lab report [--profile quick|full] [--set name=value ...] [--only 01 04 ...]"""
import argparse
import sys

from .report import WRITEUP_DIR, NotebookFailed, report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("report", help="run the notebooks and export the write-up")
    run.add_argument("--profile", default="full", help="quick or full (default full)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="NAME=VALUE", help="override one parameter of the profile")
    run.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                     help="run only these notebooks (name or number, e.g. 04 or 04_caching)")
    run.add_argument("--run-id", help="name of the run directory (default: a timestamp)")
    run.add_argument("--no-export", action="store_true", help="skip writing HTML and PDF")
    run.add_argument("--writeup-dir", default=str(WRITEUP_DIR),
                     help="where report.html and report.pdf go (default: writeup/)")
    args = parser.parse_args(argv)
    try:
        report(args.profile, args.overrides, args.only, args.run_id, export=not args.no_export,
               writeup_dir=args.writeup_dir)
    except NotebookFailed as failure:
        print(f"report stopped: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
