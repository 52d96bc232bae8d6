"""Train many captures, or one capture at many settings, in parallel on Ray Tune.

    python sweep.py captures/                          # every <name>_input/<name>_target pair in the folder
    python sweep.py plan.csv --grid hidden=16,32 lr=0.005,0.01 --budget 120
    python sweep.py pedal_set.csv --grid hidden=16,32  # a capture set (knob columns): conditioned models
    python sweep.py captures/ --address auto           # on the Ray cluster this machine has joined

Each (capture, grid setting) is one Ray Tune trial. A trial runs train.py's own training
in-process (capture.run_capture) and leaves an ordinary run folder under --out, reporting
its val ESR to Tune after every epoch, so that ASHA stops settings that trail the others
of the same capture early. Run the same command again after Ctrl-C or a crash and it
goes on: ended trials are skipped, cut-short ones resume from their checkpoints. At the
end: summary.csv, compare.html and the best run of each capture.

The plan, the grid and the trials' files are capture/plan.py (no Ray); this file is the
Ray side. Ray is an optional extra: pip install -e ".[cluster]".
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

from audio_io.files import AudioError
from capture import CaptureConfig
from capture.config import DEFAULT_EPOCHS
from capture.folder import absolute
from capture.plan import (FINISHED, STOPPED_EARLY, PlanError, Trial, best_so_far, mark_trial, pair_problem,
                          parse_grid, plan_trials, read_plan, run_trial, summary_rows, trial_status, write_summary)
from command_line import ArgumentParser, fail
from lstm_core.files.atomic import write_text_atomic

SWEEP_FILE = "sweep.json"         # in --out: what the sweep is, so that running it again continues it
REDUCTION = 3                     # ASHA keeps the best third of a capture's trials at each rung
RUNGS = 2                         # rungs before the end: at 1/9 and 1/3 of the budget (or epochs)
NO_RAY = 'sweep.py runs on Ray: install it with  pip install -e ".[cluster]"'


def parse_args(argv):
    p = ArgumentParser(description="Train every capture of a plan, at every setting of a grid, in parallel on Ray.")
    p.add_argument("plan", metavar="PLAN", help="a folder of <name>_input.wav / <name>_target.wav pairs, or a CSV "
                   "with columns input, target and optionally name (knob columns make it one capture set)")
    p.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2",
                   help="settings to try for every capture, every combination: hidden, layers, lr, schedule, average, "
                        "undo_floor, knob_jitter, knob_blend, batch, segment, tbptt, warmup, prewarm, pre_emphasis, "
                        "chrono (or auto), input_level (dBFS, at most +20, or off), normalize_input (yes, no), seed "
                        "(train.py's flags)")
    p.add_argument("--budget", type=float, help="seconds of training per trial (default: train.py's rule)")
    p.add_argument("--epochs", type=int, help="epochs per trial at most")
    p.add_argument("--patience", type=int, help="stop a trial when its val ESR has not improved for this many epochs")
    p.add_argument("--out", help="the sweep's folder (default: runs/sweep-<date-time>, or the unfinished sweep of "
                   "the same command)")
    p.add_argument("--address", help="join a running Ray cluster: auto (the one this machine joined with ray start), "
                   "or HOST:PORT of its head, or ray://HOST:10001; default: a local Ray on this machine")
    p.add_argument("--processes", type=int, default=1, help="CPU cores (processes) per trial (default 1)")
    p.add_argument("--cpus", type=int, help="cores the local Ray may use (default: all)")
    p.add_argument("--no-early-stop", action="store_true", help="train every trial to its end (no ASHA)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for flag, value in {"--processes": args.processes, "--cpus": args.cpus, "--epochs": args.epochs,
                        "--patience": args.patience}.items():
        if value is not None and value < 1:
            fail(f"{flag} must be at least 1, got {value}")
    if args.budget is not None and not (math.isfinite(args.budget) and args.budget > 0):
        fail(f"--budget must be a positive number of seconds, got {args.budget}")
    try:
        captures = read_plan(args.plan)
        grid = parse_grid(args.grid)
    except (PlanError, AudioError) as exc:
        fail(str(exc))
    if args.cpus is not None and args.address is not None:
        fail("--cpus sizes the local Ray: a cluster's cores are its own (leave out --cpus with --address)")
    for setting in grid:                 # a value train.py would refuse is one line now, not a failed trial each
        try:
            CaptureConfig(input="-", target="-", **setting).check()
        except ValueError as exc:
            fail(f"--grid: {exc}")
    rule = {"epochs": args.epochs, "budget": args.budget, "patience": args.patience}
    usable = []
    for capture in captures:
        problem = pair_problem(capture)
        if problem:
            print(f"sweep: {capture.name}: {problem}; the sweep goes on without it", flush=True)
        else:
            usable.append(capture)
    if not usable:
        fail(f"{args.plan}: no capture passes the pair checks: nothing to train")
    try:                                 # after the checks above, which need no Ray: a bad plan is said first
        import ray
        from ray import tune
    except ImportError:
        fail(NO_RAY)
    identity = {"plan": absolute(args.plan), "grid": args.grid, "rule": rule, "processes": args.processes}
    try:
        out = sweep_folder(args.out, identity)
    except (PlanError, OSError) as exc:
        fail(str(exc))
    trials = plan_trials(usable, grid, out)
    pending = [t for t in trials if trial_status(t.folder) not in (FINISHED, STOPPED_EARLY)]
    if len(pending) < len(trials):
        print(f"sweep: continuing {out}: {len(trials) - len(pending)} of {len(trials)} trials had ended", flush=True)
    progress = Progress(trials, pending)
    interrupted = False
    if pending:
        connect(ray, args)
        cores = ray.cluster_resources().get("CPU", 0)
        if args.processes > cores:
            fail(f"--processes {args.processes}: a trial would need more cores than Ray has ({cores:g}); give at "
                 f"most {cores:g}")
        print(f"sweep: {len(pending)} of {len(trials)} trials ({len(usable)} capture(s) x {len(grid)} setting(s)) "
              f"into {out}; {cores:g} cores, {args.processes} a trial", flush=True)
        try:
            run_tune(tune, pending, rule, args, out, progress)
        except KeyboardInterrupt:
            interrupted = True
    return finish(out, trials, progress, interrupted)


def sweep_folder(out: str | None, identity: dict) -> Path:
    """--out, or the newest runs/sweep-* that ran this very command and has not finished,
    or a new runs/sweep-<date-time>; its sweep.json written. Raises PlanError for an --out
    that holds another sweep or other files."""
    if out is None:
        unfinished = [p.parent for p in sorted(Path("runs").glob(f"sweep-*/{SWEEP_FILE}"))
                      if _identity(p) == identity and not (p.parent / "summary.csv").is_file()]
        folder = unfinished[-1] if unfinished else Path("runs") / f"sweep-{datetime.now():%Y%m%d-%H%M%S}"
    else:
        folder = Path(out)
    if (folder / SWEEP_FILE).is_file():
        if _identity(folder / SWEEP_FILE) != identity:
            raise PlanError(f"{folder} holds another sweep (another plan, grid, budget or --processes): choose "
                            f"another --out")
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise PlanError(f"{folder} exists and is not an empty folder: choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / SWEEP_FILE, json.dumps(identity, indent=1))
    return folder.resolve()


def _identity(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def connect(ray, args):
    """A local Ray on this machine, or the cluster at --address; an address that does not
    answer is one line, before Ray spends a minute retrying it."""
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
    if args.address is None:
        ray.init(num_cpus=args.cpus, **quiet)
        return
    address = args.address
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as exc:
            fail(f"--address {address}: no Ray cluster answers there ({getattr(exc, 'strerror', None) or exc}); "
                 f"start one with  ray start --head  and give its address")
    try:
        quiet.pop("include_dashboard")
        ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        # Ray 2.60's client server asks for its token (ray start writes it to ~/.ray/auth_token), and a
        # client that does not send one only times out; RAY_AUTH_MODE=token makes it send it.
        hint = ("; if the cluster asks for a token (a plain ray start did, with Ray 2.60), run with "
                "RAY_AUTH_MODE=token and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
                if address.startswith("ray://") and not os.environ.get("RAY_AUTH_MODE") else "")
        fail(f"--address {address}: {str(exc).splitlines()[0]}{hint}")


def run_tune(tune, trials: list[Trial], rule: dict, args, out: Path, progress: "Progress"):
    """Every pending trial on Tune, ASHA per capture (unless --no-early-stop)."""
    from ray.tune.schedulers import FIFOScheduler

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")      # Tune's own tables off: Progress tells the user
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")   # Ctrl-C: KeyboardInterrupt here, exit 130
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    timed = args.budget is not None
    horizon = args.budget if timed else (args.epochs or DEFAULT_EPOCHS)
    scheduler = FIFOScheduler() if args.no_early_stop else PerCaptureASHA(
        time_attr="seconds" if timed else "epoch", metric="best_val_esr", mode="min", max_t=horizon,
        grace_period=max(horizon / REDUCTION ** RUNGS, 1), reduction_factor=REDUCTION,
        stop_last_trials=False)       # a trial that reaches the end stops itself (train.py's rule), not marked "early"
    trainable = tune.with_resources(train_trial, {"cpu": args.processes})
    tuner = tune.Tuner(trainable,
                       param_space={"trial": tune.grid_search([t.to_dict() for t in trials]), "rule": rule,
                                    "processes": args.processes},
                       tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=str(out / ".tune"), name="trials", verbose=0,
                                                 callbacks=[progress]))
    tuner.fit()


def train_trial(config: dict):
    """One trial, in a Ray worker: train.py's run in the trial's folder, each epoch's val
    ESR reported to Tune."""
    from ray import tune

    from lstm_core.backend import BackendError
    from lstm_core.files.model_file import ModelFileError
    from lstm_core.run import Reporter

    class TuneReporter(Reporter):
        best = math.inf

        def epoch(self, row: dict, improved: bool):
            if math.isfinite(row["val_esr"]):
                self.best = min(self.best, row["val_esr"])
            tune.report({"val_esr": row["val_esr"], "best_val_esr": min(self.best, 1e9), "epoch": row["epoch"],
                         "seconds": row["seconds"]})

    trial = Trial.from_dict(config["trial"])
    reporter = TuneReporter()
    reporter.best = best_so_far(trial)          # a resumed trial is judged on its whole run
    try:
        run_trial(trial, config["rule"], config["processes"], reporter)
    except (AudioError, ModelFileError, BackendError, ValueError, OSError) as exc:
        Path(trial.folder).mkdir(parents=True, exist_ok=True)
        mark_trial(trial, f"failed: {exc}")
        raise RuntimeError(str(exc)) from None


class PerCaptureASHA:
    """ASHA, but each capture's trials compete only with each other: a hard capture's
    settings are never stopped for trailing an easy capture's. One ASHAScheduler per
    capture, behind Tune's scheduler interface."""

    def __new__(cls, **asha):
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        class _PerCapture(FIFOScheduler):
            def __init__(self):
                super().__init__()
                self._groups = {}

            def _group(self, trial):
                name = trial.config["trial"]["capture"]["name"]
                if name not in self._groups:
                    self._groups[name] = ASHAScheduler(**asha)
                return self._groups[name]

            def on_trial_add(self, controller, trial):
                self._group(trial).on_trial_add(controller, trial)

            def on_trial_result(self, controller, trial, result):
                decision = self._group(trial).on_trial_result(controller, trial, result)
                if result.get(asha["time_attr"], 0) >= asha["max_t"]:
                    return self.CONTINUE     # ASHA's last rung is max_t: the trial ends there by itself
                return decision

            def on_trial_complete(self, controller, trial, result):
                self._group(trial).on_trial_complete(controller, trial, result)

            def on_trial_remove(self, controller, trial):
                self._group(trial).on_trial_remove(controller, trial)

        return _PerCapture()


def _callback_base():
    try:
        from ray.tune import Callback
    except ImportError:
        return object
    return Callback


class Progress(_callback_base()):
    """What the sweep tells while it runs (a Tune callback): a line per ended trial, and
    every PERIOD seconds trials done, running and stopped, and the best val ESR per capture.
    It also marks a trial that Tune's scheduler stopped (trial.json: "stopped early")."""

    PERIOD = 15.0

    def __init__(self, trials: list[Trial], pending: list[Trial]):
        self.total = len(trials)
        self.ended = len(trials) - len(pending)
        self.running: set = set()
        self.best: dict = {}
        self.failed: dict = {}
        self.last = time.monotonic()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        spec = Trial.from_dict(trial.config["trial"])
        name = spec.capture.name
        self.best[name] = min(self.best.get(name, math.inf), result.get("best_val_esr", math.inf))
        if result.get("done") and trial_status(spec.folder) != FINISHED:     # the scheduler's stop, not the end
            mark_trial(spec, STOPPED_EARLY)
        if time.monotonic() - self.last > self.PERIOD:
            self.last = time.monotonic()
            print(f"sweep: {self.status()}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._ended(trial, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        spec = Trial.from_dict(trial.config["trial"])
        status = trial_status(spec.folder) or "failed: see Ray's log"
        self._ended(trial, status.removeprefix("failed: "))

    def _ended(self, trial, error):
        self.running.discard(trial.trial_id)
        self.ended += 1
        spec = Trial.from_dict(trial.config["trial"])
        if error is not None:
            self.failed[spec.folder] = error
            print(f"sweep: {spec.capture.name} {spec.label}: failed: {error}", flush=True)
            return
        row = summary_rows([spec])[0]
        print(f"sweep: {spec.capture.name} {spec.label}: {trial_status(spec.folder) or 'ended'}, best val ESR "
              f"{row['best_val_esr']:.4g} after {row['epochs']} epochs ({row['seconds']:.0f} s); {self.status()}",
              flush=True)

    def status(self) -> str:
        best = ", ".join(f"{name} {esr:.4g}" for name, esr in self.best.items() if math.isfinite(esr))
        return (f"{self.ended} of {self.total} ended, {len(self.running)} running"
                + (f"; best val ESR: {best}" if best else ""))


def finish(out: Path, trials: list[Trial], progress: Progress, interrupted: bool) -> int:
    """summary.csv, the missing reports, compare.html, and the best run per capture."""
    rows = summary_rows(trials, progress.failed)
    failed = [row for row in rows if row["status"].startswith("failed")]
    ended = [row for row in rows if row["status"] in (FINISHED, STOPPED_EARLY)] + failed
    if interrupted or len(ended) < len(rows) or failed:
        write_summary(out / "summary-so-far.csv", rows)
        unfinished = len(rows) - len(ended) + len(failed)
        print(f"sweep: {unfinished} trial(s) did not end{' (interrupted)' if interrupted else ''}"
              f"{f', {len(failed)} of them failed (see the summary)' if failed else ''}; run the same command again "
              f"to go on (summary so far: {out / 'summary-so-far.csv'})", flush=True)
        return 130 if interrupted else 1
    import run_report

    trained = [Path(row["folder"]) for row in rows if row["epochs"] > 0]
    for folder in trained:                  # a trial the scheduler stopped was cut short before its report
        if not (folder / "report.html").is_file() and (folder / "model.npz").is_file():
            try:
                run_report.write_report(folder)
            except Exception as exc:        # noqa: BLE001 - a report never fails the sweep
                print(f"sweep: {folder.name}: report not written ({str(exc).splitlines()[0]})", flush=True)
    write_summary(out / "summary.csv", rows)
    (out / "summary-so-far.csv").unlink(missing_ok=True)
    try:
        if trained:
            run_report.write_comparison(trained, out / "compare.html")
    except (run_report.ReportError, OSError) as exc:      # a damaged run folder: the summary stands
        print(f"sweep: compare.html not written ({str(exc).splitlines()[0]})", flush=True)
    for row in rows:
        if row["best"]:
            print(f"best for {row['capture']}: {row['setting']}, val ESR {row['best_val_esr']:.4g}: {row['folder']}")
    print(f"sweep: {len(rows)} trials ({sum(r['stopped_early'] == 'yes' for r in rows)} stopped early); summary: "
          f"{out / 'summary.csv'}; comparison: {out / 'compare.html'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
