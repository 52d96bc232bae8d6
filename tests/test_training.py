"""It learns, through train.py itself: the origin's sanity checks and two effects, on
small generated material (CI-sized: each run is a few seconds on two cores).

Each run held to a limit asks for --device cpu: the epochs and the limits were measured
on the CPU, whose batch and segment differ from a GPU's (lstm_core/devices.py), and where
a GPU is usable, --device auto would take it. That a GPU learns as the CPU does is
tests/test_gpu_matches_cpu.py's."""

import numpy as np
import soundfile as sf

from audio_io import effects
from audio_io.demo import music_like

from helpers import error_db, history, model_esr, run, train, write_pair


def test_identity_without_skip_converges(tmp_path):
    """The origin's sanity check, input file == target file, without the skip connection:
    the LSTM itself must learn to pass the audio through."""
    rate = 22050
    dry = music_like(10, rate, seed=11)
    sf.write(tmp_path / "same.wav", dry, rate, subtype="PCM_16")
    out = train("same.wav", "same.wav", "--no-skip", "--epochs", 5, "--chrono", 0, "--out", "run", "--device", "cpu",
                cwd=tmp_path)
    print(out)
    assert model_esr(tmp_path / "run") < 1e-3


def test_identity_with_skip_is_near_immediate(tmp_path):
    rate = 22050
    dry = music_like(10, rate, seed=12)
    sf.write(tmp_path / "same.wav", dry, rate, subtype="PCM_16")
    train("same.wav", "same.wav", "--epochs", 1, "--out", "run", "--device", "cpu", cwd=tmp_path)
    first = float(history(tmp_path / "run")[0]["val_esr"])
    print(f"identity with skip: val ESR {first:.3g} after one epoch")
    assert first < 1e-4


def test_origin_files_8bit_lowpass(tmp_path):
    """The origin's files: 8-bit unsigned, 11025 Hz, mono WAVs of a low-pass pair."""
    rate = 11025
    dry = music_like(24, rate, seed=13)
    wet = effects.one_pole_lowpass(dry, 1000.0, rate)
    write_pair(tmp_path, dry, wet, rate, subtype="PCM_U8")
    assert sf.info(str(tmp_path / "dry.wav")).subtype == "PCM_U8"
    out = train("dry.wav", "wet.wav", "--epochs", 7, "--chrono", 0, "--out", "run", "--device", "cpu", cwd=tmp_path)
    print(out)
    assert model_esr(tmp_path / "run") < 1e-2


def test_overdrive_into_lowpass(tmp_path):
    """A soft-clipping overdrive (tanh of a gained signal) followed by a one-pole low-pass."""
    rate = 22050
    dry = music_like(16, rate, seed=14)
    wet = effects.one_pole_lowpass(np.tanh(5.0 * dry) / np.tanh(5.0), 3000.0, rate)
    write_pair(tmp_path, dry, wet, rate)
    out = train("dry.wav", "wet.wav", "--epochs", 4, "--chrono", 0, "--out", "run", "--device", "cpu", cwd=tmp_path)
    print(out)
    assert model_esr(tmp_path / "run") < 3e-2

    # The trained model through process.py: parallel chunks match the exact sequential run.
    sf.write(tmp_path / "other.wav", music_like(12, rate, seed=16), rate, subtype="FLOAT")
    for mode in ([], ["--sequential"]):
        code, _, err = run("process.py", "run/model.npz", "other.wav", f"out{len(mode)}.wav", *mode, cwd=tmp_path)
        assert code == 0, err
    fast, _ = sf.read(tmp_path / "out0.wav")
    exact, _ = sf.read(tmp_path / "out1.wav")
    assert error_db(fast, exact) < -80


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    """2 epochs, then --resume to 4, ends exactly where 4 epochs in one go end: weights,
    best weights, Adam, RNG and history all come back from the checkpoint."""
    rate = 11025
    dry = music_like(8, rate, seed=15)
    write_pair(tmp_path, dry, effects.demo_effect(dry, rate), rate)
    common = ["--processes", 1, "--patience", 100, "--chrono", 0]    # unraced (a race's resume: test_race.py)
    train("dry.wav", "wet.wav", "--epochs", 4, "--out", "straight", *common, cwd=tmp_path)
    train("dry.wav", "wet.wav", "--epochs", 2, "--out", "run", *common, cwd=tmp_path)
    first = history(tmp_path / "run")
    out = train("--resume", "run", "--epochs", 4, cwd=tmp_path)
    assert "resuming" in out
    rows, straight = history(tmp_path / "run"), history(tmp_path / "straight")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert rows[:2] == first                                             # the old rows kept as they were
    assert [r["val_esr"] for r in rows] == [r["val_esr"] for r in straight]
    assert float(rows[3]["seconds"]) > float(rows[1]["seconds"])        # time keeps counting on
    with np.load(tmp_path / "run" / "model.npz") as resumed, np.load(tmp_path / "straight" / "model.npz") as once:
        for name in once.files:
            if name != "config.json":
                assert np.array_equal(resumed[name], once[name]), name
    out = train("--resume", "run", cwd=tmp_path)                         # the stored rule: 4 epochs, done
    assert "already stopped (epochs)" in out and len(history(tmp_path / "run")) == 4


def test_demo_runs_and_writes_its_pair(tmp_path):
    """The README's first command, cut short: the demo pair is generated, written and learned."""
    out = train("--demo", "--budget", 4, "--out", "run", "--device", "cpu", cwd=tmp_path)
    run_dir = tmp_path / "run"
    for name in ("demo_input.wav", "demo_target.wav", "model.npz", "checkpoint.npz", "history.csv",
                 "val_prediction.wav", "report.html", "curves.png", "prediction.png"):
        assert (run_dir / name).is_file(), name
    assert sf.info(str(run_dir / "demo_input.wav")).samplerate == 44100
    rows = history(run_dir)
    assert float(rows[-1]["seconds"]) < 20                      # the budget stops it
    assert model_esr(run_dir) < 0.1 and "best val ESR" in out.splitlines()[-1]
