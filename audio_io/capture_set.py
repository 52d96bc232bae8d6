"""A capture set: one effect recorded at several knob settings, listed in a CSV file.

    input,target,gain,tone,name
    di.wav,amp_g2_t5.wav,2,5,clean
    di.wav,amp_g8_t5.wav,8,5,crunch
    di_2.wav,amp_g8_t9.wav,8,9,

One row per recording: the dry ``input`` and the ``target`` (paths relative to the CSV's
folder, or absolute; the same dry input may serve several rows), one column per knob,
named by the user, and an optional ``name`` (default: the target file's name, without its
extension). Every mistake stops with one line that names the file, the row (as a
spreadsheet numbers it: the header is row 1) and the column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from .files import AudioError

PATH_COLUMNS = ("input", "target")
NAME_COLUMN = "name"


class CaptureSetError(AudioError):
    """The capture set cannot be used; the message names the file, row and column."""


@dataclass(frozen=True)
class CaptureRow:
    name: str
    input: str                # absolute paths
    target: str
    knobs: tuple              # the knob values as written, in CaptureSet.knob_names' order
    row: int                  # the spreadsheet row number (the header is row 1)


@dataclass(frozen=True)
class CaptureSet:
    path: str
    knob_names: tuple
    rows: tuple               # CaptureRow, in the file's order

    def ranges(self, given: dict | None = None) -> dict:
        """name -> (low, high) of each knob: ``given`` ranges where set, else the data's own
        smallest and largest value. Raises CaptureSetError for a range that is empty."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.knob_names))
        if unknown:
            raise CaptureSetError(f"{self.path}: --knob-range {unknown[0]}: no such knob column (the knobs are "
                                  f"{', '.join(self.knob_names)})")
        ranges = {}
        for index, name in enumerate(self.knob_names):
            values = [row.knobs[index] for row in self.rows]
            low, high = given.get(name, (min(values), max(values)))
            if not high > low:
                raise CaptureSetError(f"{self.path}: the range of knob {name} is empty ({low:g} to {high:g})")
            outside = [row for row in self.rows if not low <= row.knobs[index] <= high]
            if outside:
                raise CaptureSetError(f"{self.path}, row {outside[0].row}, column {name}: "
                                      f"{outside[0].knobs[index]:g} is outside the knob's range ({low:g} to {high:g}): "
                                      f"widen --knob-range")
            ranges[name] = (float(low), float(high))
        return ranges


def read_capture_set(path) -> CaptureSet:
    """The capture set in ``path``, checked (columns, numbers, constant knobs, duplicate
    settings, names, files present). The audio itself is checked when it is read."""
    path = Path(path)
    if not path.is_file():
        raise CaptureSetError(f"{path}: no such file")
    columns, records = read_records(path)
    for column in PATH_COLUMNS:
        if column not in columns:
            raise CaptureSetError(f"{path}: no column {column!r} (a capture set has columns input, target, one per "
                                  f"knob, and optionally name)")
    knob_names = tuple(c for c in columns if c and c not in (*PATH_COLUMNS, NAME_COLUMN))
    if not knob_names:
        raise CaptureSetError(f"{path}: no knob column: add one column per knob (gain, tone, ...) with its setting "
                              f"in each row")
    if not records:
        raise CaptureSetError(f"{path}: no rows: list one recording per row under the header")
    rows, seen_names, seen_settings = [], {}, {}
    for number, record in enumerate(records, start=2):
        files = row_files(path, number, record)
        knobs = tuple(_number(path, number, name, record.get(name, "")) for name in knob_names)
        name = record.get(NAME_COLUMN) or Path(files[1]).stem
        if name in seen_names:
            raise CaptureSetError(f"{path}, row {number}, column name: {name!r} names row {seen_names[name]} too: "
                                  f"give every row its own name")
        if knobs in seen_settings:
            setting = ", ".join(f"{k}={v:g}" for k, v in zip(knob_names, knobs))
            raise CaptureSetError(f"{path}, row {number}: the same setting as row {seen_settings[knobs]} ({setting}): "
                                  f"each row must be another setting")
        seen_names[name], seen_settings[knobs] = number, number
        rows.append(CaptureRow(name, files[0], files[1], knobs, number))
    for index, name in enumerate(knob_names):
        values = {row.knobs[index] for row in rows}
        if len(values) == 1:
            raise CaptureSetError(f"{path}, column {name}: {next(iter(values)):g} in every row: a knob that never "
                                  f"moves cannot be learned; remove the column, or add rows at other settings")
    return CaptureSet(str(path.resolve()), knob_names, tuple(rows))


def read_records(path: Path) -> tuple[list, list]:
    """(the column names, one dict per row), every name and cell stripped; a CSV that does
    not read, names a column twice or has a row longer than its header is CaptureSetError.
    (Shared with a sweep's plan, capture/plan.py, which lists pairs the same way.)"""
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            raw = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CaptureSetError(f"{path}: not a readable CSV file ({exc})") from None
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise CaptureSetError(f"{path}: column {duplicated[0]!r} appears twice: name every column once")
    records = []
    for number, record in enumerate(raw, start=2):
        if None in record:                       # more cells than the header has columns
            raise CaptureSetError(f"{path}, row {number}: more cells than the header has columns")
        records.append({(k or "").strip(): (v or "").strip() for k, v in record.items()})
    return columns, records


def row_files(path: Path, number: int, record: dict) -> list[str]:
    """[input, target] of a row as absolute paths (relative ones against the CSV's folder);
    an empty cell or a missing file is CaptureSetError naming the row and column."""
    files = []
    for column in PATH_COLUMNS:
        if not record.get(column):
            raise CaptureSetError(f"{path}, row {number}, column {column}: empty")
        file = Path(record[column]) if Path(record[column]).is_absolute() else path.parent / record[column]
        if not file.is_file():
            raise CaptureSetError(f"{path}, row {number}, column {column}: {record[column]}: no such file")
        files.append(str(file.resolve()))
    return files


def _number(path, row: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise CaptureSetError(f"{path}, row {row}, column {column}: {text!r} is not a number")
    return value
