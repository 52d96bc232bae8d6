"""Knob-conditioned captures: a capture set trains one model for every setting, process.py
plays it at any setting by name, AIDA-X carries it, and bad capture sets cost one line."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from audio_io import effects
from audio_io.demo import music_like
from lstm_core.files.npz import load_model, save_model
from lstm_core.model import ModelConfig, init_params
from lstm_core.knobs import Knob, knob_inputs

from helpers import assert_one_line_error, relative_error, run

RATE = 16000


def drive_pedal(x, drive, tone=None):
    """tanh of a drive-dependent gain into a low-pass (its cutoff set by tone, if given)."""
    gain = 1.0 + 1.5 * drive
    cutoff = 2500.0 if tone is None else 800.0 + 400.0 * tone
    return effects.one_pole_lowpass(np.tanh(gain * x) / np.tanh(gain), cutoff, RATE)


def write_set(folder, rows, header=None, seconds=6, seed=30):
    """dry.wav and one target per row of knob dicts; set.csv listing them."""
    dry = music_like(seconds, RATE, seed=seed)
    sf.write(folder / "dry.wav", dry, RATE, subtype="FLOAT")
    names = list(rows[0])
    lines = [header or ",".join(["input", "target", *names, "name"])]
    for index, knobs in enumerate(rows):
        wet = drive_pedal(dry, *knobs.values())
        sf.write(folder / f"wet{index}.wav", wet, RATE, subtype="FLOAT")
        lines.append(",".join(["dry.wav", f"wet{index}.wav", *(f"{v:g}" for v in knobs.values()), f"s{index}"]))
    (folder / "set.csv").write_text("\n".join(lines) + "\n")
    return dry


def train_set(folder, *flags):
    """train.py on the capture set in ``folder``, on the CPU, where the limits the tests
    check were measured (a GPU's batch and segment differ: lstm_core/devices.py)."""
    code, out, err = run("train.py", "--captures", folder / "set.csv", "--out", folder / "run", "--processes", "1",
                         "--device", "cpu", *flags, cwd=folder, timeout=600)
    assert code == 0, err
    return out


def setting_esrs(folder) -> dict:
    _, _, meta = load_model(folder / "run" / "model.npz")
    return {part["name"]: part["esr"] for part in meta["val_parts"]}, meta


def test_one_model_learns_every_setting_and_one_between_them(tmp_path):
    """5 settings of a drive knob; the middle one held out. The conditioned model reaches
    val ESR below 1e-2 at every trained setting and below 3e-2 at the held-out one."""
    write_set(tmp_path, [{"drive": d} for d in (0, 1, 2, 3, 4)])
    out = train_set(tmp_path, "--holdout", "s2", "--epochs", "15", "--segment", "0.25", "--chrono", "0")
    esrs, meta = setting_esrs(tmp_path)
    print(out)
    assert meta["knobs"] == [{"name": "drive", "min": 0.0, "max": 4.0}]
    assert all(esrs[name] < 1e-2 for name in ("s0", "s1", "s3", "s4")), esrs
    assert esrs["s2"] < 3e-2, esrs
    assert "held out: never trained on" in out
    assert "capture set: windows blended between neighbouring settings" in out


def test_a_row_on_its_own_dry_take_is_named_and_gets_jitter_instead_of_blending(tmp_path):
    """Blending needs a neighbouring setting of the same dry input; train.py says which rows
    have none (they get the knob jitter), and says so for the whole set when none has one."""
    write_set(tmp_path, [{"drive": d} for d in (0, 2, 4)], seconds=3)
    other = music_like(3, RATE, seed=31)
    sf.write(tmp_path / "dry2.wav", other, RATE, subtype="FLOAT")
    sf.write(tmp_path / "wet_other.wav", drive_pedal(other, 3), RATE, subtype="FLOAT")
    with open(tmp_path / "set.csv", "a") as csv:
        csv.write("dry2.wav,wet_other.wav,3,other\n")
    out = train_set(tmp_path, "--epochs", "1", "--segment", "0.25")
    message = "capture set: other: no neighbouring setting of the same dry input, so knob jitter 0.03 there"
    assert message in out
    out = train_set(tmp_path, "--epochs", "1", "--segment", "0.25", "--holdout", "s1", "--force")
    assert message in out and "no window is blended" not in out       # s0 and s2 are neighbours without s1
    (tmp_path / "set.csv").write_text("input,target,drive,name\n"
                                      "dry.wav,wet0.wav,0,s0\ndry2.wav,wet_other.wav,3,other\n")
    out = train_set(tmp_path, "--epochs", "1", "--segment", "0.25", "--force")
    assert "no two settings of one dry input lie next to each other along one knob, so no window is blended" in out


def test_two_knobs_by_name_and_the_aidax_round_trip(tmp_path):
    dry = write_set(tmp_path, [{"drive": d, "tone": t} for d, t in ((0, 0), (3, 0), (0, 2), (3, 2))], seconds=4)
    train_set(tmp_path, "--epochs", "2", "--segment", "0.25", "--knob-range", "drive=0:4")
    _, config, meta = load_model(tmp_path / "run" / "model.npz")
    assert config.input_size == 3 and [k["name"] for k in meta["knobs"]] == ["drive", "tone"]
    assert meta["knobs"][0]["max"] == 4.0 and meta["knobs"][1]["max"] == 2.0          # given, and the data's own
    sf.write(tmp_path / "in.wav", dry[: RATE * 2], RATE, subtype="FLOAT")
    model = tmp_path / "run" / "model.npz"
    code, _, err = run("process.py", model, tmp_path / "in.wav", tmp_path / "ours.wav", "--knob", "tone=1",
                       "--knob", "drive=2", "--sequential")
    assert code == 0, err
    code, _, err = run("export.py", model, tmp_path / "pedal.json")
    assert code == 0, err
    document = json.loads((tmp_path / "pedal.json").read_text())
    assert document["in_shape"][-1] == 3 and [k["name"] for k in document["metadata"]["knobs"]] == ["drive", "tone"]
    code, _, err = run("process.py", tmp_path / "pedal.json", tmp_path / "in.wav", tmp_path / "aidax.wav", "--knob",
                       "0.5", "--knob", "0.5", "--sequential")                    # by position: drive 2/4, tone 1/2
    assert code == 0, err
    ours, _ = sf.read(tmp_path / "ours.wav", dtype="float32")
    theirs, _ = sf.read(tmp_path / "aidax.wav", dtype="float32")
    assert relative_error(theirs, ours) < 1e-6
    code, _, err = run("export.py", model, tmp_path / "pedal.nam")
    assert_one_line_error(code, err, "AIDA-X")
    for knobs, match in ((["drive=2"], "give --knob tone=VALUE too"), (["drive=9", "tone=1"], "--extrapolate"),
                         (["volume=1", "tone=1"], "no knob named 'volume'"), (["drive=x", "tone=1"], "finite number")):
        flags = [item for knob in knobs for item in ("--knob", knob)]
        code, _, err = run("process.py", model, tmp_path / "in.wav", tmp_path / "x.wav", *flags)
        assert_one_line_error(code, err, match)
    code, _, err = run("process.py", model, tmp_path / "in.wav", tmp_path / "x.wav", "--knob", "drive=9", "--knob",
                       "tone=1", "--extrapolate")
    assert code == 0, err


def test_knob_jitter_moves_each_window_s_knobs_and_nothing_else():
    """recordings_batches with jitter: every window's knob inputs are its row's setting
    plus one draw of noise (constant over the window, of about the deviation asked for);
    the audio and the targets are as without it, and jitter 0 leaves the settings exact."""
    from audio_io.windows import recordings_batches

    rng = np.random.default_rng(4)
    recordings = [(rng.standard_normal(3000).astype(np.float32), rng.standard_normal(3000).astype(np.float32),
                   (0.25 * row, 1.0 - 0.25 * row)) for row in range(3)]
    plain = list(recordings_batches(recordings, 100, 20, 16, np.random.default_rng(1)))
    jittered = list(recordings_batches(recordings, 100, 20, 16, np.random.default_rng(1), jitter=0.05))
    settings = {tuple(np.float32(v) for v in r[2]) for r in recordings}
    offsets = []
    for (x0, y0), (x1, y1) in zip(plain, jittered, strict=True):
        assert np.array_equal(x0[:, 0], x1[:, 0]) and np.array_equal(y0, y1)
        assert {tuple(column) for column in x0[0, 1:].T} <= settings                 # exact without jitter
        assert np.array_equal(x1[1:, 1:], np.broadcast_to(x1[:1, 1:], x1[1:, 1:].shape))   # constant in a window
        offsets.append(x1[0, 1:] - x0[0, 1:])
    offsets = np.concatenate(offsets, axis=1)
    assert 0.04 < offsets.std() < 0.06 and abs(offsets.mean()) < 0.01


def test_blended_windows_sit_between_two_neighbouring_settings_and_mix_their_targets_alike():
    """recordings_batches with blend: a window of a row that has a neighbour keeps its
    audio, and its setting and target are the same mix, (1 - u) row + u neighbour, of two
    neighbouring rows; about the fraction asked for is moved. Only the row without a
    neighbour (another dry take) gets the jitter."""
    from audio_io.windows import recordings_batches

    n, warmup, segment = 3000, 20, 100
    rng = np.random.default_rng(5)
    take = (np.arange(n) / n).astype(np.float32)                    # a sample's value names its position
    targets = [rng.standard_normal(n).astype(np.float32) for _ in range(3)]
    settings = (0.0, 0.5, 1.0)
    recordings = [(take, y, (c,)) for y, c in zip(targets, settings)]
    recordings.append((rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32), (0.25,)))
    neighbours = [(1,), (0, 2), (1,), ()]
    moved, kept, others = 0, 0, []
    for x, y in recordings_batches(recordings, segment, warmup, 16, np.random.default_rng(2), jitter=0.05, blend=0.5,
                                   neighbours=neighbours):
        assert np.array_equal(x[1:, 1:], np.broadcast_to(x[:1, 1:], x[1:, 1:].shape))     # constant in a window
        for column in range(y.shape[1]):
            c = float(x[0, 1, column])
            start = int(round(float(x[warmup, 0, column]) * n))
            if not np.array_equal(x[:, 0, column], take[start - warmup : start + segment]):
                others.append(c - 0.25)                             # the other take
                continue
            if c in settings:
                kept += 1
                y_expected = targets[settings.index(c)][start - warmup : start + segment]
            else:
                moved += 1
                low = 0 if c < 0.5 else 1
                u = (c - settings[low]) / 0.5
                y_expected = ((1 - u) * targets[low] + u * targets[low + 1])[start - warmup : start + segment]
            np.testing.assert_allclose(y[:, column], y_expected, atol=1e-5)
    assert 0.35 < moved / (moved + kept) < 0.65
    others = np.array(others)
    assert others.size > 10 and 0.03 < others.std() < 0.07


def test_blend_neighbours_are_the_next_settings_along_one_knob_of_the_same_take():
    """On a grid of (drive, tone) settings of one dry take, a row's neighbours differ in one
    knob, with nothing between; another take (or the same take aligned differently) has none."""
    from audio_io.dataset import blend_neighbours

    rng = np.random.default_rng(6)
    take = rng.standard_normal(500).astype(np.float32)
    settings = [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.0, 1.0), (0.5, 1.0)]
    recordings = [(take, rng.standard_normal(500).astype(np.float32), c) for c in settings]
    recordings.append((rng.standard_normal(500).astype(np.float32), take, (0.25, 0.0)))    # another take
    recordings.append((np.roll(take, 3), take, (0.75, 0.0)))                              # shifted: another take
    near = [set(n) for n in blend_neighbours(recordings)]
    assert near == [{1, 3}, {0, 2, 4}, {1}, {0, 4}, {1, 3}, set(), set()]


def test_knob_inputs_scale_over_the_trained_range():
    knobs = [Knob("gain", 0.0, 10.0), Knob("tone", 2.0, 4.0)]
    assert knob_inputs(knobs, 2, ["tone=3", "gain=7"]) == pytest.approx((0.7, 0.5))
    assert knob_inputs(knobs, 2, ["7", "3"]) == pytest.approx((0.7, 0.5))               # by position, own units
    assert knob_inputs(None, 1, ["0.25"]) == (0.25,)                                    # AIDA-X: as is
    with pytest.raises(ValueError, match="no names"):
        knob_inputs(None, 1, ["gain=1"])


@pytest.mark.parametrize("damage,match", [
    ("missing column", "no column 'target'"),
    ("not a number", "row 3, column drive: 'loud' is not a number"),
    ("constant knob", "column tone: 1 in every row"),
    ("duplicate setting", "row 5: the same setting as row 2"),
    ("missing file", "row 3, column target: gone.wav: no such file"),
    ("rates differ", "row 3 (s1): 22050 Hz, but row 2 is 16000 Hz"),
])
def test_bad_capture_sets_are_one_line_naming_row_and_column(tmp_path, damage, match):
    write_set(tmp_path, [{"drive": d, "tone": 1.0} for d in (0, 1, 2)], seconds=2)
    lines = (tmp_path / "set.csv").read_text().splitlines()
    if damage != "constant knob":
        lines = [line.replace(",1,s", ",1.5,s") if i == 1 else line for i, line in enumerate(lines)]   # tone moves
    if damage == "missing column":
        lines = [",".join(cell for i, cell in enumerate(line.split(",")) if i != 1) for line in lines]
    elif damage == "not a number":
        lines[2] = lines[2].replace(",1,1,", ",loud,1,")
    elif damage == "constant knob":
        pass                                                   # tone is 1 in every row already
    elif damage == "duplicate setting":
        lines.append(lines[1].replace("s0", "s9"))
    elif damage == "missing file":
        lines[2] = lines[2].replace("wet1.wav", "gone.wav")
    elif damage == "rates differ":
        x, _ = sf.read(tmp_path / "wet1.wav", dtype="float32")
        sf.write(tmp_path / "wet1.wav", x, 22050)
        sf.write(tmp_path / "dry22.wav", sf.read(tmp_path / "dry.wav", dtype="float32")[0], 22050)
        lines[2] = lines[2].replace("dry.wav", "dry22.wav")
    (tmp_path / "set.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run("train.py", "--captures", tmp_path / "set.csv", "--out", tmp_path / "run", cwd=tmp_path)
    assert_one_line_error(code, err, match)
    assert not (tmp_path / "run").exists()


def test_the_knob_demo_writes_its_capture_set_and_trains_on_it(tmp_path):
    code, out, err = run("train.py", "--demo", "knobs", "--budget", "4", "--out", tmp_path / "run", "--processes", "1",
                         "--device", "cpu", cwd=tmp_path, timeout=600)     # a GPU's budget counts queued work
    assert code == 0, err
    assert (tmp_path / "run" / "demo_knobs.csv").is_file() and (tmp_path / "run" / "report.html").is_file()
    esrs, meta = setting_esrs(tmp_path)
    assert [k["name"] for k in meta["knobs"]] == ["drive", "tone"] and len(esrs) == 7
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Every setting" in page and page.count("<audio") == 6          # lowest and highest, 3 players each
    (tmp_path / "run").rename(tmp_path / "renamed")                      # its CSV moves with it, and is found
    code, out, err = run("train.py", "--resume", tmp_path / "renamed", "--budget", "6", cwd=tmp_path, timeout=600)
    assert code == 0 and "best val ESR" in out, err
    code, out, err = run("report.py", tmp_path / "renamed", cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "renamed" / "report.html").read_text().count("<audio") == 6


def test_more_capture_set_mistakes_are_one_line(tmp_path):
    write_set(tmp_path, [{"drive": d} for d in (0, 1, 2)], seconds=2)
    good = (tmp_path / "set.csv").read_text().splitlines()
    cases = [
        (["input,target,drive,drive,name"] + [line + ",9" for line in good[1:]], [], "column 'drive' appears twice"),
        (good[:2] + [good[2] + ",extra"] + good[3:], [], "row 3: more cells than the header has columns"),
        (good, ["--knob-range", "drive=0:1.5"], "row 4, column drive: 2 is outside the knob's range"),
        (good, ["--knob-range", "drive=0:inf"], "LOW below HIGH"),
        (good, ["--init", tmp_path / "plain.npz"], "takes 0 input(s) besides the audio, and the capture set has 1"),
    ]
    config = ModelConfig(hidden_size=4)
    save_model(tmp_path / "plain.npz", init_params(config, np.random.default_rng(0)), config, RATE)
    for lines, flags, match in cases:
        (tmp_path / "set.csv").write_text("\n".join(lines) + "\n")
        code, _, err = run("train.py", "--captures", tmp_path / "set.csv", "--out", tmp_path / "run", *flags,
                           cwd=tmp_path)
        assert_one_line_error(code, err, match)
    (tmp_path / "resumable").mkdir()
    code, _, err = run("train.py", "--resume", tmp_path / "resumable", "--holdout", "s1", cwd=tmp_path)
    assert_one_line_error(code, err, "leave out --holdout")


def test_a_capture_set_run_resumes_with_the_knobs_it_started_with(tmp_path):
    write_set(tmp_path, [{"drive": d} for d in (0, 2, 4)], seconds=3)
    train_set(tmp_path, "--epochs", "1", "--segment", "0.25")
    lines = (tmp_path / "set.csv").read_text().splitlines()
    (tmp_path / "set.csv").write_text("\n".join(lines[:3]) + "\n")             # a row gone: the range stays 0 to 4
    code, out, err = run("train.py", "--resume", tmp_path / "run", "--epochs", "2", cwd=tmp_path)
    assert code == 0 and "resuming" in out, err
    _, _, meta = load_model(tmp_path / "run" / "model.npz")
    assert meta["knobs"] == [{"name": "drive", "min": 0.0, "max": 4.0}]
    (tmp_path / "set.csv").write_text("\n".join(line + (f",{i}" if i else ",tone") for i, line in enumerate(lines)) + "\n")
    code, _, err = run("train.py", "--resume", tmp_path / "run", "--epochs", "3", cwd=tmp_path)
    assert_one_line_error(code, err, "not the ones the run started with")


def test_a_conditioned_model_fine_tunes_on_a_capture_set(tmp_path):
    """--init from a model trained on a capture set: its weights and its knob ranges carry
    over (a row outside its range is refused, as with --knob-range)."""
    write_set(tmp_path, [{"drive": d} for d in (0, 2, 4)], seconds=3)
    train_set(tmp_path, "--epochs", "1", "--segment", "0.25")
    code, out, err = run("train.py", "--captures", tmp_path / "set.csv", "--init", tmp_path / "run" / "model.npz",
                         "--out", tmp_path / "tuned", "--epochs", "1", "--segment", "0.25", "--processes", "1",
                         cwd=tmp_path)
    assert code == 0 and "init: the starting model's val ESR is" in out, err
    _, config, meta = load_model(tmp_path / "tuned" / "model.npz")
    assert config.input_size == 2 and meta["knobs"] == [{"name": "drive", "min": 0.0, "max": 4.0}]


def test_a_capture_set_run_with_knob_jitter_resumes_where_one_straight_through_ends(tmp_path):
    """The knob noise and the blending (on by default; the rows share their dry take) come
    from the run's own generator, which the checkpoint holds: a capture-set run stopped
    after one epoch and resumed ends exactly where three epochs straight through end."""
    import dataclasses

    from audio_io.capture_set import read_capture_set
    from audio_io.dataset import load_capture_dataset
    from lstm_core.devices import device_settings
    from lstm_core.run import StopRule, load_checkpoint, new_run, train_run
    from lstm_core.training import TrainConfig

    write_set(tmp_path, [{"drive": d} for d in (0, 2, 4)], seconds=3)
    data = load_capture_dataset(read_capture_set(tmp_path / "set.csv"))
    device = device_settings("cpu", batch=4, segment=0.05, processes=1)

    def fresh(epochs):
        return new_run(ModelConfig(input_size=2, hidden_size=4), TrainConfig(warmup=100, tbptt=100, knob_jitter=0.05),
                       StopRule(epochs=epochs, patience=100), {}, seed=2)

    straight = fresh(3)
    train_run(straight, data, device, tmp_path / "straight", {})
    train_run(fresh(1), data, device, tmp_path / "resumed", {})
    resumed, _ = load_checkpoint(tmp_path / "resumed")
    assert resumed.train.knob_jitter == 0.05 and resumed.train.knob_blend == TrainConfig().knob_blend > 0
    resumed.rule = dataclasses.replace(resumed.rule, epochs=3)
    train_run(resumed, data, device, tmp_path / "resumed", {})
    assert [row["val_esr"] for row in resumed.progress.history] == [row["val_esr"] for row in straight.progress.history]
    for name in straight.params:
        assert np.array_equal(resumed.params[name], straight.params[name]), name


def test_a_capture_set_s_input_level_is_its_trained_rows_together(tmp_path):
    """--input-level reads CaptureDataset.input_rms: the RMS of every trained row's
    input together, held-out rows left out. The rows' inputs are made to differ here (the
    set shares one dry take): 1, 2 and 3 times it, the last held out."""
    import dataclasses

    from audio_io.capture_set import read_capture_set
    from audio_io.dataset import load_capture_dataset

    write_set(tmp_path, [{"drive": d} for d in (0, 2, 4)], seconds=3)
    data = load_capture_dataset(read_capture_set(tmp_path / "set.csv"))
    data.recordings = [dataclasses.replace(r, x_train=(k * r.x_train).astype(np.float32), held_out=k == 3)
                       for k, r in zip((1, 2, 3), data.recordings)]
    base = data.recordings[0].x_train.astype(np.float64)
    expected = np.sqrt((1 + 4) * np.mean(base ** 2) / 2)          # rows 1 and 2 alike in length
    assert data.input_rms == pytest.approx(expected, rel=1e-6)


def test_a_capture_set_is_linear_or_high_gain_only_when_every_trained_row_is(tmp_path):
    """CaptureDataset.linear_esrs (the input level's and model size's defaults): a set
    whose trained rows are all a linear filter of their input is linear; one row with
    clipping makes it not, unless that row is held out. Likewise a set is a high-gain one (a
    rectifier's rows, which no linear filter explains) only when every trained row is."""
    import dataclasses

    from audio_io.capture_set import read_capture_set
    from audio_io.dataset import load_capture_dataset
    from lstm_core.training import (DEFAULT_INPUT_LEVEL, HIGH_GAIN_HIDDEN, HIGH_GAIN_INPUT_LEVEL, default_hidden_size,
                                    default_input_level)

    write_set(tmp_path, [{"drive": d} for d in (0, 2, 4)], seconds=3)
    data = load_capture_dataset(read_capture_set(tmp_path / "set.csv"))
    linear = [dataclasses.replace(r, y_train=(0.25 * (k + 1) * r.x_train).astype(np.float32))
              for k, r in enumerate(data.recordings)]
    data.recordings = linear
    assert len(data.linear_esrs) == 3 and default_input_level(*data.linear_esrs) == -math.inf
    clipped = dataclasses.replace(linear[1], y_train=np.tanh(20 * linear[1].x_train).astype(np.float32))
    data.recordings = [linear[0], clipped, linear[2]]
    assert default_input_level(*data.linear_esrs) == DEFAULT_INPUT_LEVEL
    data.recordings = [linear[0], dataclasses.replace(clipped, held_out=True), linear[2]]
    assert len(data.linear_esrs) == 2 and default_input_level(*data.linear_esrs) == -math.inf
    rectified = [dataclasses.replace(r, y_train=np.abs(r.x_train)) for r in linear]
    data.recordings = rectified
    assert default_input_level(*data.linear_esrs) == HIGH_GAIN_INPUT_LEVEL
    data.recordings = [rectified[0], linear[1], rectified[2]]
    assert len(data.linear_esrs) == 2 and default_input_level(*data.linear_esrs) == DEFAULT_INPUT_LEVEL   # settled
    data.recordings = [rectified[0], dataclasses.replace(linear[1], held_out=True), rectified[2]]
    assert default_input_level(*data.linear_esrs) == HIGH_GAIN_INPUT_LEVEL
    assert default_hidden_size(None, *data.linear_esrs) == HIGH_GAIN_HIDDEN           # and so the model size
    data.recordings = [rectified[0], linear[1], rectified[2]]
    assert default_hidden_size(None, *data.linear_esrs) == 32
