"""The command lines: bad input gets one clear line and a non-zero exit, never a traceback,
and nothing the user owns is overwritten."""

import math

import numpy as np
import pytest
import soundfile as sf

from lstm_core.files.npz import save_model
from lstm_core.model import ModelConfig, init_params
from lstm_core.training import (DEFAULT_INPUT_LEVEL, HIGH_GAIN_HIDDEN, HIGH_GAIN_HIDDEN_BUDGET, HIGH_GAIN_INPUT_LEVEL,
                                LINEAR_ESR, MAX_INPUT_GAIN, MAX_INPUT_LEVEL, TrainConfig)

from helpers import assert_one_line_error, error_db, rounding_amplifier, run, train, write_pair


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(5)
    x = np.clip(0.2 * rng.standard_normal(11025 * 3), -0.9, 0.9).astype(np.float32)
    write_pair(tmp_path, x, 0.5 * x, 11025)
    sf.write(tmp_path / "wet_22k.wav", 0.5 * x, 22050)
    return tmp_path


@pytest.mark.parametrize("args,match", [
    (["missing.wav", "wet.wav"], "missing.wav: no such file"),
    (["dry.wav", "wet_22k.wav"], "resample one"),
    (["dry.wav"], "give both INPUT and TARGET"),
    (["dry.wav", "wet.wav", "--device", "gpu"], "--device gpu"),
    (["dry.wav", "wet.wav", "--batch", "0"], "--batch must be at least 1"),
    (["dry.wav", "wet.wav", "--segment", "30"], "fewer than one window"),
    (["dry.wav", "wet.wav", "--segment", "inf"], "--segment must be a positive number"),
    (["dry.wav", "wet.wav", "--tbptt", "0"], "--tbptt must be at least 2"),
    (["dry.wav", "wet.wav", "--average", "1"], "--average must be 0 or more and below 1"),
    (["dry.wav", "wet.wav", "--average", "nan"], "--average must be 0 or more and below 1"),
    (["dry.wav", "wet.wav", "--knob-jitter", "-0.1"], "--knob-jitter must be between 0 and 1"),
    (["dry.wav", "wet.wav", "--knob-blend", "1.5"], "--knob-blend must be between 0 and 1"),
    (["dry.wav", "wet.wav", "--knob-blend", "nan"], "--knob-blend must be between 0 and 1"),
    (["dry.wav", "wet.wav", "--rollback-above", "0.5"], "--rollback-above must be 0 (never) or above 1"),
    (["dry.wav", "wet.wav", "--undo-floor", "2"], "--undo-floor must be between 0 (no floor) and 1"),
    (["dry.wav", "wet.wav", "--undo-floor", "nan"], "--undo-floor must be between 0 (no floor) and 1"),
    (["dry.wav", "wet.wav", "--pre-emphasis", "1"], "--pre-emphasis must be 0 (off) or more and below 1"),
    (["dry.wav", "wet.wav", "--normalize-input", "--init", "dry.wav"], "leave it out with --init"),
    (["dry.wav", "wet.wav", "--input-level", "-10", "--init", "dry.wav"], "--input-level shapes how a fresh model"),
    (["dry.wav", "wet.wav", "--input-level", "-10", "--normalize-input"], "give one of them"),
    (["dry.wav", "wet.wav", "--input-level", "30"], "--input-level is a level in dBFS RMS, at most +20"),
    (["dry.wav", "wet.wav", "--input-level", "nan"], "--input-level is a level in dBFS RMS, at most +20"),
    (["dry.wav", "wet.wav", "--input-level", "loud"], "a level in dBFS RMS such as -20, or off"),
    (["dry.wav", "wet.wav", "--pre-emphasis", "-0.5"], "--pre-emphasis must be 0 (off) or more and below 1"),
    (["dry.wav", "wet.wav", "--hidden", "0"], "--hidden must be at least 1"),
    (["dry.wav", "wet.wav", "--warmup", "-5"], "--warmup must be 0 or more"),
    (["dry.wav", "wet.wav", "--prewarm", "-1"], "--prewarm must be 0 or more"),
    (["dry.wav", "wet.wav", "--chrono", "2"], "--chrono must be 0 (off) or at least 3 samples"),
    (["dry.wav", "wet.wav", "--chrono", "inf"], "--chrono must be 0 (off) or at least 3 samples"),
    (["dry.wav", "wet.wav", "--chrono", "50", "--init", "dry.wav"], "--chrono sets a fresh model's start"),
    (["dry.wav", "wet.wav", "--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),
    (["dry.wav", "wet.wav", "--val-fraction", "1e-9"], "left for validation"),
    (["dry.wav", "wet.wav", "--epochs", "0"], "--epochs must be at least 1"),
])
def test_train_rejects_bad_input(pair, args, match):
    if "gpu" in args:
        from lstm_core.backend import gpu_unavailable_reason

        if not gpu_unavailable_reason():
            pytest.skip("a GPU is usable here")
    code, _, stderr = run("train.py", *args, "--out", pair / "run", cwd=pair)
    assert_one_line_error(code, stderr, match)
    assert not (pair / "run").exists()                  # nothing left behind by a refused run


def test_train_hands_its_pre_emphasis_prewarm_and_chrono_to_the_run_s_training_config(pair):
    """--pre-emphasis, --prewarm and --chrono reach the run's TrainConfig, which model.npz
    records (0: the plain error; a warm-up from zero; by default the forget-gate bias +1)."""
    from lstm_core.files.npz import load_model

    train(pair / "dry.wav", pair / "wet.wav", "--pre-emphasis", "0", "--prewarm", "0", "--chrono", "7", "--epochs",
          "1", "--segment", "0.2", "--warmup", "200", "--processes", "1", "--out", pair / "run", cwd=pair)
    _, _, meta = load_model(pair / "run" / "model.npz")
    assert meta["train"]["pre_emphasis"] == 0.0 and TrainConfig().pre_emphasis > 0
    assert meta["train"]["prewarm"] == 0 and TrainConfig().prewarm > 0
    assert meta["train"]["chrono"] == 7.0 and TrainConfig().chrono == 0.0


def test_a_fresh_run_races_its_two_starts_unless_chrono_is_given(pair):
    """By default train.py trains the forget-gate bias +1 and the chrono start for 3 epochs
    each (no --budget) and goes on with the better, says so and records it; --chrono 0 (or
    any --chrono) starts from what it says, unraced."""
    from lstm_core.files.npz import load_model
    from lstm_core.race import HEAT_EPOCHS

    quick = ("--epochs", "4", "--segment", "0.2", "--warmup", "200", "--processes", "1")
    out = train(pair / "dry.wav", pair / "wet.wav", *quick, "--out", pair / "raced", cwd=pair)
    assert "race, heat 1 of 2: the forget-gate bias +1, for 3 epochs" in out and HEAT_EPOCHS == 3
    assert "race, heat 2 of 2: the chrono initialisation over 1 to 50 samples" in out
    assert out.count("epoch    1 ") == 2 and out.count("epoch    4 ") == 1
    _, _, meta = load_model(pair / "raced" / "model.npz")
    race = meta["race"]
    assert race["decided"] and race["won"] == meta["train"]["chrono"] and race["starts"] == [0.0, 50.0]
    assert f"race: the {'chrono initialisation' if race['won'] else 'forget-gate bias'}" in out
    assert not list((pair / "raced").glob(".race-*"))
    out = train(pair / "dry.wav", pair / "wet.wav", *quick, "--chrono", "0", "--out", pair / "plain", cwd=pair)
    _, _, meta = load_model(pair / "plain" / "model.npz")
    assert "race, heat" not in out and "race:" not in out and "race" not in meta and meta["train"]["chrono"] == 0.0


def test_an_input_level_sets_the_run_s_input_gain_and_resume_keeps_it(pair):
    """--input-level -6 sets the run's input gain to 10^(-6/20) / the training part's RMS,
    says so, model.npz records it, and --resume goes on with it (the checkpoint's config)."""
    from audio_io.windows import split_validation
    from lstm_core.files.npz import load_model
    from lstm_core.run import load_checkpoint

    out = train(pair / "dry.wav", pair / "wet.wav", "--input-level", "-6", "--epochs", "1", "--segment", "0.2",
                "--warmup", "200", "--processes", "1", "--out", pair / "run", cwd=pair)
    x, _ = sf.read(pair / "dry.wav", dtype="float32")
    x_train = split_validation(x, x, 0.2)[0].astype(np.float64)
    gain = 10 ** (-6 / 20) / np.sqrt(np.mean(x_train ** 2))
    _, _, meta = load_model(pair / "run" / "model.npz")
    assert meta["train"]["input_gain"] == pytest.approx(gain, rel=1e-6) and gain > 2
    assert f"{gain:.3g} times louder" in out and "as if it were at -6 dBFS RMS" in out
    train("--resume", pair / "run", "--epochs", "2", cwd=pair)
    state, _ = load_checkpoint(pair / "run")
    assert state.progress.epoch == 2 and state.train.input_gain == pytest.approx(gain, rel=1e-6)


def test_a_quiet_input_is_trained_as_if_at_the_default_level_unless_asked_otherwise(pair):
    """By default a training input quieter than DEFAULT_INPUT_LEVEL dBFS RMS gets the input
    gain that brings it there, and the run says so; --input-level picks another level, one
    already louder than the level asked (the pair, about -14 dBFS, at -30) is left alone,
    silently, and off leaves the input as it is. A pair that a linear filter explains is
    trained as it is by default, and says why; --input-level 0 still raises it. One that no
    linear filter explains (a rectifier) is trained louder, and says why."""
    from audio_io.windows import split_validation
    from lstm_core.files.npz import load_model

    x, _ = sf.read(pair / "dry.wav", dtype="float32")
    quiet = (0.05 * x).astype(np.float32)
    (pair / "quiet").mkdir()
    write_pair(pair / "quiet", quiet, np.tanh(40 * quiet) / 4, 11025)        # soft clipping: not linear
    quiet, _ = sf.read(pair / "quiet" / "dry.wav", dtype="float32")          # as 16-bit PCM holds it
    level = np.sqrt(np.mean(split_validation(quiet, quiet, 0.2)[0].astype(np.float64) ** 2))
    quick = ("--epochs", "1", "--segment", "0.2", "--warmup", "200", "--processes", "1")

    def gain_and_output(folder, *args, source=pair / "quiet"):
        out = train(source / "dry.wav", source / "wet.wav", *quick, *args, "--out", pair / folder, cwd=pair)
        return load_model(pair / folder / "model.npz")[2]["train"]["input_gain"], out

    gain, out = gain_and_output("default")
    assert gain == pytest.approx(10 ** (DEFAULT_INPUT_LEVEL / 20) / level, rel=1e-6) and gain > 5
    assert f"as if it were at {DEFAULT_INPUT_LEVEL:g} dBFS RMS, {gain:.3g} times louder" in out
    gain, out = gain_and_output("minus30", "--input-level", "-30")
    assert gain == pytest.approx(10 ** -1.5 / level, rel=1e-6)
    gain, out = gain_and_output("off", "--input-level", "off")
    assert gain == 1.0 and "input level:" not in out
    gain, out = gain_and_output("loud", "--input-level", "-30", source=pair)
    assert gain == 1.0 and "input level:" not in out
    (pair / "linear").mkdir()                                                    # the quiet input, filtered
    write_pair(pair / "linear", quiet, np.convolve(quiet, [0.5, 0.3, -0.2])[: quiet.size], 11025, subtype="FLOAT")
    gain, out = gain_and_output("linear", source=pair / "linear")
    assert gain == 1.0 and "256-tap linear filter reproduces the target to an ESR of" in out
    assert "the input is trained as it is" in out and "times louder" not in out
    gain, out = gain_and_output("linear_raised", "--input-level", "0", source=pair / "linear")
    assert gain == pytest.approx(1 / level, rel=1e-6) and "linear filter" not in out
    (pair / "rectified").mkdir()                                                 # no linear part at all
    write_pair(pair / "rectified", quiet, np.abs(quiet), 11025, subtype="FLOAT")
    gain, out = gain_and_output("rectified", source=pair / "rectified")
    assert gain == pytest.approx(10 ** (HIGH_GAIN_INPUT_LEVEL / 20) / level, rel=1e-6)
    assert "explains the target only to an ESR of" in out
    assert "(a high-gain effect), so the input is trained as if at +6 dBFS RMS" in out
    assert f"as if it were at +6 dBFS RMS, {gain:.3g} times louder" in out
    gain, out = gain_and_output("rectified_0", "--input-level", "0", source=pair / "rectified")
    assert gain == pytest.approx(1 / level, rel=1e-6) and "input is trained as if at" not in out
    # An input below -60 dBFS RMS (its peak above -60 dBFS, or the pair is refused) gets
    # the most gain there is, and the note says the level that reaches, not the one asked.
    whisper = (5e-4 / np.sqrt(np.mean(x.astype(np.float64) ** 2)) * x).astype(np.float32)
    (pair / "whisper").mkdir()
    write_pair(pair / "whisper", whisper, np.tanh(3 * x), 11025, subtype="FLOAT")
    level_db = 20 * np.log10(np.sqrt(np.mean(split_validation(whisper, whisper, 0.2)[0].astype(np.float64) ** 2)))
    gain, out = gain_and_output("whisper", source=pair / "whisper")
    assert gain == MAX_INPUT_GAIN and level_db < -60
    assert (f"input is at {level_db:.1f} dBFS RMS; the model's input weights learn as if it were at "
            f"{level_db + 60:.1f} dBFS RMS (the most it is raised), 1000 times louder") in out


def test_the_input_level_a_run_trains_at():
    """DEFAULT_INPUT_LEVEL for a fresh model (-inf for a linear pair, HIGH_GAIN_INPUT_LEVEL
    for a high-gain one), the input as it is (-inf) for a fine-tune, 0 with
    --normalize-input (and off with the sweep's normalize_input=no), what --input-level
    gives; train.py's flags reach the config."""
    import importlib

    from capture import CaptureConfig

    flags = importlib.import_module("train").parse_args
    assert flags(["a", "b", "--normalize-input"]).normalize_input is True
    assert flags(["a", "b"]).normalize_input is None and flags(["a", "b"]).input_level is None
    assert flags(["a", "b", "--input-level", "off"]).input_level == -math.inf
    assert flags(["a", "b", "--input-level", "+20"]).input_level == MAX_INPUT_LEVEL == 20.0

    assert CaptureConfig(input="a", target="b").resolved_input_level() == DEFAULT_INPUT_LEVEL
    assert CaptureConfig(input="a", target="b", init="m.npz").resolved_input_level() == -math.inf
    assert CaptureConfig(input="a", target="b", normalize_input=True).resolved_input_level() == 0.0
    assert CaptureConfig(input="a", target="b", normalize_input=False).resolved_input_level() == -math.inf
    assert CaptureConfig(input="a", target="b", input_level=-33.0).resolved_input_level() == -33.0
    assert CaptureConfig(input="a", target="b", input_level=6.0).resolved_input_level(LINEAR_ESR / 10) == 6.0
    linear = LINEAR_ESR / 10                          # a pair a linear filter explains: as it is, unless told
    assert CaptureConfig(input="a", target="b").resolved_input_level(linear) == -math.inf
    assert CaptureConfig(input="a", target="b").resolved_input_level(LINEAR_ESR) == DEFAULT_INPUT_LEVEL
    assert CaptureConfig(input="a", target="b").resolved_input_level(0.9) == HIGH_GAIN_INPUT_LEVEL
    assert CaptureConfig(input="a", target="b", input_level=0.0).resolved_input_level(0.9) == 0.0
    assert CaptureConfig(input="a", target="b", input_level=-33.0).resolved_input_level(linear) == -33.0
    assert CaptureConfig(input="a", target="b", normalize_input=True).resolved_input_level(linear) == 0.0
    assert CaptureConfig(input="a", target="b").level_from_pair
    assert not CaptureConfig(input="a", target="b", input_level=0.0).level_from_pair
    assert not CaptureConfig(input="a", target="b", init="m.npz").level_from_pair


def test_a_high_gain_pair_with_time_to_train_gets_a_bigger_model_and_says_so(pair):
    """No --hidden, --layers or --init: a pair no linear filter explains (a rectifier) gets
    HIGH_GAIN_HIDDEN units when there is no time budget (then the run ends by its epochs or
    patience) or one of HIGH_GAIN_HIDDEN_BUDGET seconds or more, and the run says why; a
    shorter budget, a linear-ish pair, or a size or layer count given keep 32, silently."""
    from lstm_core.files.npz import load_model

    x, _ = sf.read(pair / "dry.wav", dtype="float32")
    (pair / "rectified").mkdir()
    write_pair(pair / "rectified", x, np.abs(x), 11025, subtype="FLOAT")
    quick = ("--epochs", "1", "--segment", "0.2", "--warmup", "200", "--processes", "1", "--chrono", "0")

    def size_and_output(folder, *args, source=pair / "rectified"):
        out = train(source / "dry.wav", source / "wet.wav", *quick, *args, "--out", pair / folder, cwd=pair)
        return load_model(pair / folder / "model.npz")[1].hidden_size, out

    note = f"so the LSTM has {HIGH_GAIN_HIDDEN} units rather than 32"
    hidden, out = size_and_output("no_budget")
    assert hidden == HIGH_GAIN_HIDDEN and note in out and "there is no time budget" in out
    assert "a high-gain effect: the best 256-tap linear filter leaves an ESR of" in out
    hidden, out = size_and_output("long", "--budget", f"{HIGH_GAIN_HIDDEN_BUDGET:g}", "--input-level", "off")
    assert hidden == HIGH_GAIN_HIDDEN and f"the budget is {HIGH_GAIN_HIDDEN_BUDGET:g} s" in out
    hidden, out = size_and_output("short", "--budget", f"{HIGH_GAIN_HIDDEN_BUDGET - 1:g}")
    assert hidden == 32 and "model size:" not in out
    for folder, flags in {"given": ("--hidden", "32"), "stacked": ("--layers", "1")}.items():
        hidden, out = size_and_output(folder, *flags)
        assert hidden == 32 and "model size:" not in out
    hidden, out = size_and_output("soft", source=pair)               # 0.5 x: a linear pair
    assert hidden == 32 and "model size:" not in out


def test_the_model_size_a_run_trains():
    """training.default_hidden_size: HIGH_GAIN_HIDDEN only for a high-gain pair (every
    row's linear-fit ESR at SATURATED_ESR or more) with no budget or a long enough one."""
    from capture import CaptureConfig
    from capture.session import _fresh_model
    from lstm_core.training import SATURATED_ESR, default_hidden_size

    long_enough = HIGH_GAIN_HIDDEN_BUDGET
    assert default_hidden_size(None, 0.9) == default_hidden_size(long_enough, SATURATED_ESR) == HIGH_GAIN_HIDDEN
    assert default_hidden_size(long_enough, 0.9, 0.5) == HIGH_GAIN_HIDDEN          # a capture set, every row
    assert default_hidden_size(long_enough - 1, 0.9) == 32
    assert default_hidden_size(None, SATURATED_ESR * 0.99) == 32
    assert default_hidden_size(None, 0.9, 0.2) == 32                                # one row nearly linear
    assert default_hidden_size(None, math.nan) == default_hidden_size(None) == 32

    assert CaptureConfig(input="a", target="b", input_level=0.0).size_from_pair      # the level is another choice
    for given in ({"hidden": 32}, {"layers": 1}, {"init": "m.npz"}):
        assert not CaptureConfig(input="a", target="b", **given).size_from_pair

    class Notes:                                         # the one method of a Reporter used here
        def __init__(self):
            self.lines = []

        def note(self, line):
            self.lines.append(line)

    notes = Notes()
    model = _fresh_model(CaptureConfig(captures="set.csv"), 2, None, (0.9, 0.5), True, notes)
    assert (model.hidden_size, model.input_size) == (HIGH_GAIN_HIDDEN, 3)
    (line,) = notes.lines
    assert "leaves an ESR of 0.5 or more on every trained row) and there is no time budget" in line


def test_train_reports_unusable_folders_and_checkpoints(pair):
    (pair / "a_file").write_text("")
    code, _, stderr = run("train.py", "dry.wav", "wet.wav", "--out", pair / "a_file" / "run", cwd=pair)
    assert_one_line_error(code, stderr, "a_file")
    code, _, stderr = run("train.py", "--resume", pair / "nowhere", cwd=pair)
    assert_one_line_error(code, stderr, "no checkpoint.npz to resume from")
    (pair / "bad").mkdir()
    from lstm_core.files.npz import save_npz_atomic

    save_npz_atomic(pair / "bad" / "checkpoint.npz", {"x": np.zeros(2)}, {"kind": "checkpoint"})
    code, _, stderr = run("train.py", "--resume", pair / "bad", cwd=pair)
    assert_one_line_error(code, stderr, "the checkpoint is damaged")


def test_train_never_overwrites_a_run_without_force(pair):
    run_dir = pair / "run"
    run_dir.mkdir()
    (run_dir / "model.npz").write_bytes(b"precious")
    code, _, stderr = run("train.py", "dry.wav", "wet.wav", "--out", run_dir, cwd=pair)
    assert_one_line_error(code, stderr, "already holds model.npz")
    assert (run_dir / "model.npz").read_bytes() == b"precious"
    (run_dir / "model.npz").unlink()
    (run_dir / "history.csv").write_text("mine")
    code, _, stderr = run("train.py", "dry.wav", "wet.wav", "--out", run_dir, cwd=pair)
    assert_one_line_error(code, stderr, "already holds history.csv")
    assert (run_dir / "history.csv").read_text() == "mine"


@pytest.fixture
def model_file(tmp_path):
    config = ModelConfig(hidden_size=4)
    save_model(tmp_path / "model.npz", init_params(config, np.random.default_rng(0)), config, 11025)
    return tmp_path / "model.npz"


def test_process_rejects_bad_input(pair, model_file):
    code, _, stderr = run("process.py", pair / "nothing.npz", pair / "dry.wav", pair / "out.wav")
    assert_one_line_error(code, stderr, "nothing.npz: no such file")
    (pair / "junk.npz").write_bytes(b"not a zip")
    code, _, stderr = run("process.py", pair / "junk.npz", pair / "dry.wav", pair / "out.wav")
    assert_one_line_error(code, stderr, "junk.npz: not a readable model file")
    code, _, stderr = run("process.py", model_file, pair / "absent.wav", pair / "out.wav")
    assert_one_line_error(code, stderr, "absent.wav: no such file")
    code, _, stderr = run("process.py", model_file, pair / "dry.wav", pair / "dry.wav")
    assert_one_line_error(code, stderr, "is the input file")
    code, _, stderr = run("process.py", model_file, pair / "dry.wav", pair / "out.mp4")
    assert_one_line_error(code, stderr, "unknown output format")
    before = (pair / "wet.wav").read_bytes()
    code, _, stderr = run("process.py", model_file, pair / "dry.wav", pair / "wet.wav")
    assert_one_line_error(code, stderr, "exists")
    assert (pair / "wet.wav").read_bytes() == before


def test_process_writes_rate_and_subtype_and_matches_the_model(pair, model_file):
    from lstm_core.files.npz import load_model
    from lstm_core.inference import process_sequential

    x = np.clip(0.3 * np.random.default_rng(2).standard_normal((20000, 2)), -1, 1).astype(np.float32)
    sf.write(pair / "stereo_u8.wav", x, 11025, subtype="PCM_U8")
    code, stdout, stderr = run("process.py", model_file, pair / "stereo_u8.wav", pair / "out.wav", "--sequential")
    assert code == 0, stderr
    info = sf.info(str(pair / "out.wav"))
    assert info.samplerate == 11025 and info.channels == 2 and info.subtype == "PCM_16"   # 8-bit raised to 16
    y, _ = sf.read(str(pair / "out.wav"), dtype="float32")
    params, config, _ = load_model(model_file)
    x_read, _ = sf.read(str(pair / "stereo_u8.wav"), dtype="float32")
    expected, _ = process_sequential(params, config, x_read)
    assert np.abs(y - np.clip(expected, -1, 1)).max() <= 1.5 / 32768
    assert "real time" in stdout


def test_process_parallel_chunks_keep_each_channel_apart(pair, model_file):
    """Default (parallel) mode on a stereo float file whose channels differ, longer than one
    block: each channel, with its own state carried across blocks, equals its exact run."""
    from lstm_core.devices import CPU
    from lstm_core.files.npz import load_model
    from lstm_core.inference import process_sequential

    rng = np.random.default_rng(3)
    rate = 500                                      # a low rate: more than a block in few samples
    n = 2 * int(CPU.block_seconds * rate) + 7000    # two blocks (inference.block_length): a state carried
    x = np.stack([0.3 * np.sin(np.arange(n) * 0.02), 0.2 * rng.standard_normal(n)], axis=1).astype(np.float32)
    sf.write(pair / "stereo.wav", x, rate, subtype="FLOAT")
    code, _, stderr = run("process.py", model_file, pair / "stereo.wav", pair / "out.wav", "--device", "cpu")
    assert code == 0, stderr                        # (the CPU's blocks: a GPU's are longer)
    y, _ = sf.read(str(pair / "out.wav"), dtype="float32")
    params, config, _ = load_model(model_file)
    for channel in range(2):
        exact, _ = process_sequential(params, config, x[:, channel])
        assert error_db(y[:, channel], exact) < -120, channel


def test_process_runs_a_rounding_amplifier_in_float64_equal_to_sequential(pair):
    """process.py's auto precision: a model that amplifies float32 rounding runs in
    float64, says so, and the default way equals --sequential to the output's rounding;
    --precision float32 keeps float32 (and says nothing)."""
    rng = np.random.default_rng(5)
    config, params = rounding_amplifier(rng)
    save_model(pair / "amplifier.npz", params, config, 11025)
    x = (0.4 * np.sin(np.arange(30_000) * 0.03) + 0.05 * rng.standard_normal(30_000)).astype(np.float32)
    sf.write(pair / "in.wav", x, 11025, subtype="FLOAT")
    outputs = {}
    for name, options in (("default", ()), ("sequential", ("--sequential",)), ("float32", ("--precision", "float32"))):
        code, stdout, stderr = run("process.py", pair / "amplifier.npz", pair / "in.wav", pair / f"{name}.wav",
                                   *options)
        assert code == 0, stderr
        assert ("runs in float64" in stdout) == (name != "float32"), stdout
        outputs[name], _ = sf.read(str(pair / f"{name}.wav"), dtype="float32")
    assert error_db(outputs["default"], outputs["sequential"]) < -140
    code, _, stderr = run("process.py", pair / "amplifier.npz", pair / "in.wav", pair / "x.wav", "--precision", "half")
    assert_one_line_error(code, stderr, "--precision")
