"""More ways a user can get a command wrong, found by trying the tools as a newcomer would:
each costs one line (`error: ...`, exit 2) that names the real problem, and a run that is
stopped says what can be done next, truthfully."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from lstm_core.files.npz import load_npz, save_model
from lstm_core.model import ModelConfig, init_params

from helpers import ROOT, assert_one_line_error, run, write_pair

RATE = 11025


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(11)
    x = np.clip(0.2 * rng.standard_normal(RATE * 3), -0.9, 0.9).astype(np.float32)
    write_pair(tmp_path, x, np.tanh(2 * x), RATE)
    return tmp_path


QUICK = ["--segment", "0.2", "--warmup", "200", "--processes", "1"]


@pytest.mark.parametrize("script,args,match", [
    ("train.py", ["dry.wav", "wet.wav", "--epochs", "abc"], "argument --epochs: invalid int value"),
    ("process.py", [], "the following arguments are required: model, input, output"),
    ("export.py", ["model.npz"], "the following arguments are required: output"),
    ("report.py", ["--out"], "argument --out: expected one argument"),
    ("train.py", ["dry.wav", "wet.wav", "--seed", "-1"], "--seed must be 0 or more"),
    ("train.py", ["dry.wav", "wet.wav", "--tbptt", "1"], "--tbptt must be at least 2"),
    ("train.py", ["a_folder", "wet.wav"], "a_folder is a folder, not an audio file"),
])
def test_malformed_command_lines_are_one_line(pair, script, args, match):
    (pair / "a_folder").mkdir()
    code, _, stderr = run(script, *args, cwd=pair)
    assert_one_line_error(code, stderr, match)
    assert "usage:" not in stderr


def test_model_files_that_are_not_models(pair):
    config = ModelConfig(hidden_size=4)
    save_model(pair / "model.npz", init_params(config, np.random.default_rng(0)), config, RATE)
    np.save(pair / "array.npy", np.zeros(3))
    os.replace(pair / "array.npy", pair / "array.npz")
    (pair / "sound.npz").write_bytes((pair / "dry.wav").read_bytes())
    code, _, stderr = run("process.py", pair / "array.npz", pair / "dry.wav", pair / "out.wav")
    assert_one_line_error(code, stderr, "a single NumPy array (.npy), not a model file")
    code, _, stderr = run("export.py", pair / "sound.npz", pair / "out.json")
    assert_one_line_error(code, stderr, "not a readable model file (not a NumPy .npz archive)")
    assert "allow_pickle" not in stderr                        # NumPy's advice to load it unsafely stays out

    arrays, meta = load_npz(pair / "model.npz")
    from lstm_core.files.npz import save_npz_atomic

    save_npz_atomic(pair / "checkpoint.npz", arrays, {**meta, "kind": "checkpoint"})
    code, _, stderr = run("export.py", pair / "checkpoint.npz", pair / "out.json")
    assert_one_line_error(code, stderr, "a training checkpoint, not a model: use the model.npz beside it")
    for damage in ({"sample_rate": "abc"}, {"model": {**meta["model"], "skip": "yes"}}):
        save_npz_atomic(pair / "edited.npz", arrays, {**meta, **damage})
        code, _, stderr = run("export.py", pair / "edited.npz", pair / "out.json", "--force")
        if "model" in damage:
            assert_one_line_error(code, stderr, "skip must be true or false")
        else:
            assert code == 0, stderr                          # an unreadable rate is no rate: the export says so
    assert not list(pair.glob(".*"))                           # no temporary left behind


def test_output_that_is_a_folder_is_named_as_such(pair):
    config = ModelConfig(hidden_size=4)
    save_model(pair / "model.npz", init_params(config, np.random.default_rng(0)), config, RATE)
    (pair / "out.wav").mkdir()
    code, _, stderr = run("process.py", pair / "model.npz", pair / "dry.wav", pair / "out.wav", "--force")
    assert_one_line_error(code, stderr, "out.wav is a folder: give a file name")


def test_resume_refuses_settings_it_would_ignore_and_blames_flags_not_the_checkpoint(pair):
    code, _, err = run("train.py", "dry.wav", "wet.wav", "--epochs", "1", *QUICK, "--out", "run", cwd=pair)
    assert code == 0, err
    code, _, stderr = run("train.py", "--resume", "run", "--lr", "0", "--hidden", "8", cwd=pair)
    assert_one_line_error(code, stderr, "leave out --hidden, --lr")
    from train import DEFAULTS

    code, _, stderr = run("train.py", "--resume", "run", "--lr", str(DEFAULTS.lr), "--no-skip", cwd=pair)
    assert_one_line_error(code, stderr, "leave out --no-skip, --lr")        # typed, even as the default value
    code, _, stderr = run("train.py", "--resume", "run", "--pre-emphasis", "0.85", cwd=pair)
    assert_one_line_error(code, stderr, "leave out --pre-emphasis")
    code, _, stderr = run("train.py", "--resume", "run", "--chrono", "0", cwd=pair)
    assert_one_line_error(code, stderr, "leave out --chrono")
    code, _, stderr = run("train.py", "--resume", "run", "--epochs", "-1", cwd=pair)
    assert_one_line_error(code, stderr, "--epochs must be at least 1, got -1")
    assert "damaged" not in stderr
    assert load_npz(pair / "run" / "checkpoint.npz")[1]["options"]["device"] == "auto"
    code, out, err = run("train.py", "--resume", "run", "--epochs", "2", "--device", "cpu", cwd=pair)
    assert code == 0 and "resuming" in out, err
    assert load_npz(pair / "run" / "checkpoint.npz")[1]["options"]["device"] == "cpu"    # kept for the next resume


def test_a_renamed_demo_run_resumes_from_the_pair_it_holds(tmp_path):
    code, _, err = run("train.py", "--demo", "--epochs", "1", *QUICK, "--out", "first", cwd=tmp_path)
    assert code == 0, err
    (tmp_path / "elsewhere").mkdir()
    os.replace(tmp_path / "first", tmp_path / "elsewhere" / "renamed")
    code, out, err = run("train.py", "--resume", tmp_path / "elsewhere" / "renamed", "--epochs", "2", cwd=tmp_path)
    assert code == 0, err
    assert "epoch    2" in out
    stored = load_npz(tmp_path / "elsewhere" / "renamed" / "checkpoint.npz")[1]["options"]["input"]
    assert stored == str((tmp_path / "elsewhere" / "renamed" / "demo_input.wav").resolve())


def test_interrupted_before_the_first_epoch_says_there_is_nothing_to_resume(pair, monkeypatch, capsys):
    import train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import lstm_core.race

    monkeypatch.setattr(lstm_core.race, "train_run", interrupted)     # what the race and the rest of the run call
    monkeypatch.chdir(pair)
    (pair / "run").mkdir()
    (pair / "run" / "checkpoint.npz").write_bytes(b"an older run's")     # replaced with --force: not this run's
    code = train.main(["dry.wav", "wet.wav", *QUICK, "--out", "run", "--force"])
    assert code == 130
    out = capsys.readouterr().out
    assert "nothing to resume" in out and "--force" in out and "--resume" not in out


def start_training(folder):
    """train.py with 2 worker processes, read up to the end of its second epoch."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "dry.wav", "wet.wav", "--epochs", "500",
                                "--segment", "0.2", "--warmup", "200", "--processes", "2", "--device", "cpu",
                                "--out", "run"],         # the CPU: a GPU run has no worker processes
                               cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stdout:
        if line.startswith("epoch    2"):
            break
    return process


def test_sigterm_stops_a_run_like_ctrl_c(pair):
    """`kill PID` (SIGTERM) during training with worker processes: exit 143, no traceback
    from the main process or its workers, and the finished epochs saved for --resume."""
    process = start_training(pair)
    try:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert "Traceback" not in err and "leaked" not in err, err
    assert "continue with  python train.py --resume" in out
    assert (pair / "run" / "checkpoint.npz").is_file()


def test_workers_leave_quietly_when_the_main_process_is_killed(pair):
    """kill -9 gives the main process no chance to stop its workers: they find their pipe
    closed and end without a traceback (stderr closes when the last of them has gone)."""
    process = start_training(pair)
    try:
        process.kill()
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert "Traceback" not in err, err
