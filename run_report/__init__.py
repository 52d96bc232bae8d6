"""run_report: what a training run learned, as one self-contained page you can see and hear.

Files, one job each: run (reading a run folder: the model's facts, the history, the
validation audio), verdict (the grade and what to try next), figures (the PNG plots, with
matplotlib), page (the HTML: images and audio embedded, no JavaScript, no network).

    write_report(run_dir)              -> run_dir/report.html, curves.png, prediction.png
    write_comparison(run_dirs, out)    -> one page comparing runs, best first

It sits above lstm_core and audio_io (it reads what train.py wrote); neither imports it.
"""

from .run import ReportError
from .page import write_comparison, write_report

__all__ = ["ReportError", "write_report", "write_comparison"]
