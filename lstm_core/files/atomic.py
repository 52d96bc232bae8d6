"""The one writer every file of the project goes through: never a half-written file.

A file is written to a temporary file in the same folder, then renamed onto its name
(a rename within one file system is atomic). A crash, a full disk or Ctrl-C leaves the
old file as it was, or no file, never a truncated one, and no temporary behind.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def temporary_prefix(name: str) -> str:
    """How the name of atomic_output's temporary for a file named ``name`` begins (".model.npz.")."""
    return f".{name}."


@contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed onto
    ``path``, when it fails it is removed. The file gets the permissions a new file would
    (mkstemp's are owner-only), and errors name ``path``, not the temporary."""
    path = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=path.suffix)
    except OSError as exc:                       # an unwritable folder: say so of the file asked for
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        if exc.errno is None or exc.filename not in (None, temporary):
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None     # the file asked for, not the temporary
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path, data: bytes):
    with atomic_output(path) as temporary:
        Path(temporary).write_bytes(data)


def write_text_atomic(path, text: str):
    with atomic_output(path) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
