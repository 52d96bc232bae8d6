"""capture: a training run in a run folder, from a pair of recordings to a model and its report.

What train.py runs, and what a sweep's trials run in-process: one call,

    outcome = run_capture(CaptureConfig(input="dry.wav", target="wet.wav"), reporter)
    outcome = run_capture(ResumeConfig(folder="runs/wet-..."), reporter)

Files, one job each: config (what the user asks for, checked, and the options a run
stores), folder (the run folder: its name, what it may replace, the demo pair), session
(the run itself: set up or resume, train with lstm_core.run, then the validation
prediction and the report).

It sits above audio_io, lstm_core and run_report and ties them together; none of them
imports it.
"""

from .config import CaptureConfig, ResumeConfig, RunOptions
from .session import Outcome, run_capture

__all__ = ["CaptureConfig", "ResumeConfig", "RunOptions", "Outcome", "run_capture"]
