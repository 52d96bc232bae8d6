"""See and hear what a training run learned: a self-contained report page.

    python report.py runs/amp-20261124-101500                 # -> its report.html, curves.png, prediction.png
    python report.py runs/a runs/b runs/c --out compare.html  # one page comparing runs, best first

train.py writes the report at the end of every run; this command writes it again (after
--resume, say) or compares runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from audio_io.files import output_problem
from run_report import ReportError, write_comparison, write_report
from command_line import ArgumentParser, fail


def parse_args(argv):
    p = ArgumentParser(description="Write the report page of a training run, or compare several runs.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folder(s) written by train.py")
    p.add_argument("--out", help="write a comparison of the runs to this .html file (needed for more than one run)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.out is None:
            if len(args.runs) > 1:
                fail("several runs are compared on one page: give --out compare.html")
            path = write_report(args.runs[0])
            print(f"{path}: report written")
            return 0
        out = Path(args.out)
        if out.suffix.lower() not in (".html", ".htm"):
            fail(f"{out}: the comparison is an HTML page: name it .html")
        problem = output_problem(out, args.force)
        if problem:
            fail(problem)
        write_comparison(args.runs, out)
        print(f"{out}: {len(args.runs)} runs compared")
    except ReportError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
