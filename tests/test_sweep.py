"""sweep.py and its plan (capture/plan.py): many captures, and a grid of settings, on Ray Tune.

The plan, the grid and the summary are tested without Ray. The sweeps themselves run a
local Ray with 2 CPUs on tiny generated pairs (3 s at 16 kHz): every trial's run folder,
the summary against the folders, ASHA stopping a hopeless setting, a sweep killed and run
again, and a trial's model against train.py's. They skip, saying why, without Ray
(pip install -e ".[cluster]"; the test extra installs it).
"""

import contextlib
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_io import effects
from audio_io.demo import music_like
from capture.plan import (FINISHED, STOPPED_EARLY, Capture, PlanError, Trial, mark_trial, parse_grid, plan_trials,
                          read_plan, run_trial, summary_rows, trial_status)

from helpers import ROOT, assert_one_line_error, run

RATE = 16000
EFFECTS = {"soft": lambda x: np.tanh(2.0 * x), "dark": lambda x: effects.one_pole_lowpass(x, 1500.0, RATE),
           "drive": lambda x: effects.one_pole_lowpass(np.tanh(4.0 * x), 3000.0, RATE)}


def write_plan_folder(folder: Path, names=("soft", "dark"), seconds=3.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names, start=1):
        x = music_like(seconds, RATE, seed).astype(np.float32)
        sf.write(folder / f"{name}_input.wav", x, RATE, subtype="FLOAT")
        sf.write(folder / f"{name}_target.wav", EFFECTS[name](x).astype(np.float32), RATE, subtype="FLOAT")
    return folder


def read_summary(out: Path) -> list:
    with open(out / "summary.csv") as stream:
        return list(csv.DictReader(stream))


# ----------------------------------------------------------------------------- without Ray

def test_a_folder_plan_pairs_input_and_target_by_name(tmp_path):
    plan = write_plan_folder(tmp_path / "plan")
    captures = read_plan(plan)
    assert [c.name for c in captures] == ["dark", "soft"]
    assert captures[0].input.endswith("dark_input.wav") and captures[0].target.endswith("dark_target.wav")
    (plan / "dark_target.wav").unlink()
    with pytest.raises(PlanError, match="dark_input.wav: no dark_target.wav beside it"):
        read_plan(plan)


def test_a_csv_plan_lists_pairs_and_a_knob_csv_is_one_capture_set(tmp_path):
    write_plan_folder(tmp_path)
    (tmp_path / "plan.csv").write_text("input,target,name\nsoft_input.wav,soft_target.wav,a\n"
                                       "dark_input.wav,dark_target.wav,\n")
    captures = read_plan(tmp_path / "plan.csv")
    assert [c.name for c in captures] == ["a", "dark_target"]
    assert Path(captures[1].input) == (tmp_path / "dark_input.wav").resolve()
    (tmp_path / "set.csv").write_text("input,target,drive\nsoft_input.wav,soft_target.wav,1\n"
                                      "dark_input.wav,dark_target.wav,2\n")
    (capture_set,) = read_plan(tmp_path / "set.csv")
    assert capture_set.name == "set" and capture_set.captures == str((tmp_path / "set.csv").resolve())


def test_the_grid_is_every_combination_and_its_folders_name_the_setting(tmp_path):
    grid = parse_grid(["hidden=16,32", "lr=0.005,0.01"])
    assert grid == [{"hidden": 16, "lr": 0.005}, {"hidden": 16, "lr": 0.01}, {"hidden": 32, "lr": 0.005},
                    {"hidden": 32, "lr": 0.01}]
    assert parse_grid([]) == [{}]
    trials = plan_trials([Capture("amp", "a.wav", "b.wav")], grid, tmp_path)
    assert [Path(t.folder).name for t in trials] == ["amp-hidden16-lr0.005", "amp-hidden16-lr0.01",
                                                     "amp-hidden32-lr0.005", "amp-hidden32-lr0.01"]
    assert trials[0].label == "hidden=16 lr=0.005"
    assert Trial.from_dict(json.loads(json.dumps(trials[0].to_dict()))) == trials[0]
    amp = plan_trials([Capture("amp", "a.wav", "b.wav")], parse_grid(["normalize_input=yes,no"]), tmp_path)
    assert [Path(t.folder).name for t in amp] == ["amp-normalize_inputyes", "amp-normalize_inputno"]
    assert [t.setting["normalize_input"] for t in amp] == [True, False] and amp[0].label == "normalize_input=yes"
    levels = plan_trials([Capture("amp", "a.wav", "b.wav")], parse_grid(["input_level=-20,0,6,off"]), tmp_path)
    assert [Path(t.folder).name for t in levels] == ["amp-input_level-20", "amp-input_level0", "amp-input_level6",
                                                     "amp-input_leveloff"]
    assert [t.setting["input_level"] for t in levels] == [-20.0, 0.0, 6.0, -math.inf]
    text = json.dumps(levels[3].to_dict(), allow_nan=False)               # strict JSON: "off", not -Infinity
    assert Trial.from_dict(json.loads(text)) == levels[3] and '"off"' in text
    written_before = json.loads(json.dumps(levels[3].to_dict()).replace('"off"', "-Infinity"))
    assert Trial.from_dict(written_before) == levels[3]
    starts = plan_trials([Capture("amp", "a.wav", "b.wav")], parse_grid(["chrono=0,50,auto"]), tmp_path)
    assert [t.setting["chrono"] for t in starts] == [0.0, 50.0, None]                # auto: train.py's race
    assert starts[2].label == "chrono=auto" and Path(starts[2].folder).name == "amp-chronoauto"
    assert Trial.from_dict(json.loads(json.dumps(starts[2].to_dict(), allow_nan=False))) == starts[2]


@pytest.mark.parametrize("items, match", [(["size=16"], "--grid size: unknown key (known: hidden, layers"),
                                          (["hidden=16,abc"], "--grid hidden=abc: not a number"),
                                          (["lr=0"], "--grid lr=0: must be positive"),
                                          (["schedule=fast"], "--grid schedule=fast: one of constant"),
                                          (["average=1"], "--grid average=1: must be 0 or more and below 1"),
                                          (["average=nan"], "--grid average=nan: must be 0 or more and below 1"),
                                          (["knob_jitter=2"], "--grid knob_jitter=2: must be between 0 and 1"),
                                          (["knob_blend=-1"], "--grid knob_blend=-1: must be between 0 and 1"),
                                          (["undo_floor=2"], "--grid undo_floor=2: must be between 0 and 1"),
                                          (["pre_emphasis=1"], "--grid pre_emphasis=1: must be 0 or more and below 1"),
                                          (["input_level=30"], "--grid input_level=30: must be a level in dBFS"),
                                          (["chrono=2"], r"--grid chrono=2: must be 0 (off\), at least 3 samples, or "
                                                         "auto"),
                                          (["chrono=inf"], r"--grid chrono=inf: must be 0 (off\), at least 3"),
                                          (["chrono=often"], r"--grid chrono=often: must be a number of samples "
                                                             r"such as 50, 0 (off\), or auto"),
                                          (["normalize_input=maybe"], "--grid normalize_input=maybe: must be yes "
                                                                      "or no"),
                                          (["hidden"], "--grid hidden: give KEY=V1,V2"),
                                          (["lr=0.1", "lr=0.2"], "--grid lr: given twice")])
def test_a_bad_grid_is_named(items, match):
    with pytest.raises(PlanError, match=match.replace("(", r"\(")):
        parse_grid(items)


def test_the_summary_reads_the_folders_and_names_the_best_of_each_capture(tmp_path):
    trials = plan_trials([Capture("amp", "a", "b"), Capture("pedal", "c", "d")], parse_grid(["hidden=8,16"]),
                         tmp_path)
    for trial, scores in zip(trials, ([0.5, 0.2], [0.3, 0.1, 0.4], [0.05], [])):
        Path(trial.folder).mkdir()
        rows = "".join(f"{i + 1},1.0,{s},1000,{i + 1.5}\n" for i, s in enumerate(scores))
        (Path(trial.folder) / "history.csv").write_text("epoch,train_loss,val_esr,samples_per_s,seconds\n" + rows)
    mark_trial(trials[0], FINISHED)
    mark_trial(trials[1], STOPPED_EARLY)
    assert trial_status(trials[2].folder) is None
    rows = summary_rows(trials)
    assert [(r["best_val_esr"], r["epochs"], r["stopped_early"], r["best"]) for r in rows[:3]] == \
        [(0.2, 2, "no", ""), (0.1, 3, "yes", "yes"), (0.05, 1, "no", "yes")]
    assert rows[1]["seconds"] == 3.5 and rows[0]["status"] == FINISHED and rows[2]["status"] == "not ended"
    assert rows[3]["epochs"] == 0 and rows[3]["best"] == ""


# ----------------------------------------------------------------------------- bad plans, one line each

def test_bad_plans_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run("sweep.py", empty)
    assert_one_line_error(code, err, "no pairs found")
    plan = write_plan_folder(tmp_path / "plan")
    (tmp_path / "plan.csv").write_text(f"input,target\n{plan / 'soft_input.wav'},{plan / 'gone.wav'}\n")
    code, _, err = run("sweep.py", tmp_path / "plan.csv")
    assert_one_line_error(code, err, "row 2, column target: ")
    code, _, err = run("sweep.py", plan, "--grid", "width=3")
    assert_one_line_error(code, err, "--grid width: unknown key")
    code, _, err = run("sweep.py", plan, "--grid", "tbptt=256,1")
    assert_one_line_error(code, err, "--grid: --tbptt must be at least 2")
    (plan / "soft_input.flac").write_bytes((plan / "soft_input.wav").read_bytes())
    code, _, err = run("sweep.py", plan)
    assert_one_line_error(code, err, "more than one soft_input or soft_target file")
    (plan / "soft_input.flac").unlink()
    if _has_ray():
        code, _, err = run("sweep.py", plan, "--address", "127.0.0.1:1", "--out", tmp_path / "o")
        assert_one_line_error(code, err, "--address 127.0.0.1:1: no Ray cluster answers there")


def without_ray(*args):
    """sweep.py args... in a Python where ``import ray`` fails: (exit code, stderr)."""
    code = (f"import sys; sys.modules['ray'] = None; sys.argv = ['sweep.py', *{[str(a) for a in args]!r}]; "
            "import runpy; runpy.run_path('sweep.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    return done.returncode, done.stderr


def test_without_ray_sweep_says_how_to_install_it(tmp_path):
    code, err = without_ray(write_plan_folder(tmp_path / "plan"), "--out", tmp_path / "out")
    assert_one_line_error(code, err, 'pip install -e ".[cluster]"')
    assert not (tmp_path / "out").exists()


def test_without_ray_a_bad_plan_is_said_first(tmp_path):
    """The plan's checks need no Ray, so a user without it hears what is wrong with the plan
    first (seen on a GPU machine without Ray, where the bad-plan test met the Ray message)."""
    (tmp_path / "empty").mkdir()
    code, err = without_ray(tmp_path / "empty")
    assert_one_line_error(code, err, "no pairs found")


# ----------------------------------------------------------------------------- on Ray

def _has_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


needs_ray = pytest.mark.skipif(not _has_ray(), reason='Ray is not installed (pip install -e ".[cluster]")')
# Each sweep starts a local Ray of 2 CPUs; under pytest -n 2 --dist loadgroup (the README's
# command) the sweeps share one worker, so that two never run at once.
one_sweep_at_a_time = pytest.mark.xdist_group("ray")


@needs_ray
@one_sweep_at_a_time
def test_a_failing_pair_is_named_and_asha_stops_a_hopeless_setting(tmp_path):
    """One capture, lr 0.01, 0.005 and 1e-6 (listed last, so that when it reaches its first
    rung the others have been there): ASHA stops 1e-6 long before its 9 epochs, and never
    stops the best at its end (9 epochs is also ASHA's last rung). A second capture whose
    target is silent fails the pair checks; the sweep goes on without it."""
    plan = write_plan_folder(tmp_path / "plan", names=("soft",))
    sf.write(plan / "mute_input.wav", music_like(3.0, RATE, 9), RATE)
    sf.write(plan / "mute_target.wav", np.zeros(3 * RATE), RATE)
    out = tmp_path / "out"
    code, stdout, stderr = run("sweep.py", plan, "--grid", "hidden=8", "lr=0.01,0.005,1e-6", "--epochs", "9",
                               "--out", out, "--cpus", "2", timeout=600)
    assert code == 0, stderr
    assert "sweep: mute: " in stdout and "the sweep goes on without it" in stdout
    rows = {row["setting"]: row for row in read_summary(out)}
    assert set(rows) == {"hidden=8 lr=0.01", "hidden=8 lr=0.005", "hidden=8 lr=1e-06"}
    hopeless = rows["hidden=8 lr=1e-06"]
    assert hopeless["stopped_early"] == "yes" and int(hopeless["epochs"]) < 9
    (best,) = [row for row in rows.values() if row["best"] == "yes"]
    assert best["status"] == FINISHED and best["stopped_early"] == "no" and best["epochs"] == "9"
    assert (Path(best["folder"]) / "val_prediction.wav").is_file()       # run_capture's own end, not cut short
    # 1e-6 leaves the model near its start (a wire: 0.25 here), 0.01 learns (0.03 in 9 epochs)
    learned = float(rows["hidden=8 lr=0.01"]["best_val_esr"])
    assert hopeless["best"] == "" and float(hopeless["best_val_esr"]) > 5 * learned
    for row in rows.values():               # every trial's folder and report; the summary agrees with them
        folder = Path(row["folder"])
        assert (folder / "model.npz").is_file() and (folder / "report.html").is_file()
        with open(folder / "history.csv") as stream:
            history = list(csv.DictReader(stream))
        assert int(row["epochs"]) == len(history)
        assert float(row["best_val_esr"]) == pytest.approx(min(float(h["val_esr"]) for h in history), rel=1e-5)
        assert trial_status(folder) in (FINISHED, STOPPED_EARLY)
    assert "soft-hidden8-lr1e-06" in (out / "compare.html").read_text()
    assert "best for soft: hidden=8 lr=0.01" in stdout or "best for soft: hidden=8 lr=0.005" in stdout


def _session_processes(session: int) -> list:
    """The pids of every live process in ``session`` (Linux: read from /proc). A zombie has
    ended (nothing left to write) and waits for a parent to reap it: it is left out."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if os.getsid(int(entry)) == session and state != "Z":
                    pids.append(int(entry))
            except (OSError, IndexError):            # gone meanwhile (ProcessLookupError is an OSError)
                pass
    return pids


def _kill_session(process: subprocess.Popen):
    """kill -9 of ``process``, started in a session of its own, and of everything else in that
    session, then wait until none of it is left to write. Ray's workers run in process groups
    of their own (in its session), so killing the sweep's group alone leaves them training:
    one of them once finished a trial after the kill and made this test count wrong."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for _ in range(100):
        left = _session_processes(process.pid)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    raise AssertionError(f"processes of the killed sweep still running: {_session_processes(process.pid)}")


@needs_ray
@one_sweep_at_a_time
def test_a_killed_sweep_goes_on_without_repeating_a_trial_and_matches_train_py(tmp_path):
    """kill -9 of the whole sweep once a trial has finished; the same command again
    finishes the rest and leaves the finished trial as it was. A trial's model equals
    train.py's with the same seed, settings and processes (resumed or not: a resumed run
    equals one straight through, tests/test_run.py)."""
    plan = write_plan_folder(tmp_path / "plan", names=("soft", "dark", "drive"))
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "sweep.py"), str(plan), "--grid", "hidden=8", "--epochs", "6",
               "--no-early-stop", "--out", str(out), "--cpus", "2"]
    sweep = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    finished = []
    deadline = time.monotonic() + 240
    while not finished and time.monotonic() < deadline and sweep.poll() is None:
        time.sleep(0.5)
        finished = [f for f in out.glob("*-hidden8") if trial_status(f) == FINISHED]
    _kill_session(sweep)
    assert finished, "no trial finished before the deadline"
    finished = [f for f in out.glob("*-hidden8") if trial_status(f) == FINISHED]   # two may end together
    before = {f: (f / "history.csv").read_bytes() for f in finished}
    assert len(finished) < 3, "every trial had finished before the kill: nothing left to resume"
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(finished)} of 3 trials had ended" in done.stdout
    for folder, history in before.items():       # not trained again
        assert (folder / "history.csv").read_bytes() == history
    rows = read_summary(out)
    assert len(rows) == 3 and all(row["status"] == FINISHED and row["epochs"] == "6" for row in rows)

    train_out = tmp_path / "train"
    code, _, stderr = run("train.py", plan / "dark_input.wav", plan / "dark_target.wav", "--hidden", "8",
                          "--epochs", "6", "--processes", "1", "--device", "cpu", "--out", train_out, timeout=600)
    assert code == 0, stderr
    with np.load(out / "dark-hidden8" / "model.npz") as trial, np.load(train_out / "model.npz") as alone:
        weights = [k for k in alone.files if k.startswith(("lstm", "out"))]
        assert weights and all(np.array_equal(trial[k], alone[k]) for k in weights)


def test_a_capture_set_trial_trains_one_conditioned_model(tmp_path):
    """A plan CSV with knob columns is one capture; its trial (what a Ray worker runs,
    here in-process) trains a conditioned model with the set's knobs, and marks it finished."""
    write_plan_folder(tmp_path, names=("soft", "drive"))
    (tmp_path / "set.csv").write_text("input,target,drive\nsoft_input.wav,soft_target.wav,2\n"
                                      "drive_input.wav,drive_target.wav,4\n")
    (trial,) = plan_trials(read_plan(tmp_path / "set.csv"), parse_grid(["hidden=4"]), tmp_path / "out")
    run_trial(trial, {"epochs": 1, "budget": None, "patience": None}, 1)
    assert trial_status(trial.folder) == FINISHED
    with np.load(Path(trial.folder) / "model.npz") as model:
        meta = json.loads(str(model["config.json"]))
        assert model["lstm0.W_x"].shape[1] == 2          # the audio and the drive knob
    assert [knob["name"] for knob in meta["knobs"]] == ["drive"]


def test_only_sweep_py_imports_ray():
    code = ("import sys, train, process, export, report, capture, capture.plan, lstm_core.run, audio_io.dataset, "
            "run_report; assert 'ray' not in sys.modules, 'ray was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
