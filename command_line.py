"""What the command lines (train.py, process.py, export.py, report.py) share: a mistake
costs one line, ``error: ...``, and exit code 2; never a traceback, never a usage block."""

from __future__ import annotations

import argparse
import sys


def fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a malformed command line is one error line too (argparse would print
    its usage block first); --help still prints everything."""

    def error(self, message: str):
        fail(f"{message} (see python {self.prog} --help)")
