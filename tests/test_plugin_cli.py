"""export.py, and process.py / train.py --init with .nam and AIDA-X files, end to end."""

import json

import numpy as np
import pytest
import soundfile as sf

from lstm_core.files.npz import load_model, save_model
from lstm_core.model import ModelConfig, init_params
from lstm_core.files.formats import read_model

from helpers import (assert_one_line_error, hand_aidax, hand_nam, make_signal, random_torch_layers, reference_forward,
                     relative_error, run, write_json, write_pair)

RATE = 11025


@pytest.fixture
def files(tmp_path):
    """A hand-built .nam (non-zero initial state), a conditioned AIDA-X file, an input WAV,
    and one of our models with and one without the skip."""
    rng = np.random.default_rng(7)
    layers, head_W, head_b = random_torch_layers(rng, 1, 6, 1)
    h0, c0 = (0.4 * rng.standard_normal((1, 6))).astype(np.float32), (0.4 * rng.standard_normal((1, 6))).astype(np.float32)
    write_json(tmp_path / "amp.nam", hand_nam(layers, head_W, head_b, h0, c0, sample_rate=RATE))
    knob_layers = random_torch_layers(rng, 2, 5, 1)
    write_json(tmp_path / "pedal.json", hand_aidax(*knob_layers, inputs=2, skip=1))
    x = make_signal(3000, seed=1)
    sf.write(tmp_path / "in.wav", x, RATE, subtype="FLOAT")
    for skip in (True, False):
        config = ModelConfig(hidden_size=4, skip=skip)
        save_model(tmp_path / f"ours_skip{int(skip)}.npz", init_params(config, np.random.default_rng(1)), config, RATE,
                   {"val_esr": 0.01})
    return {"dir": tmp_path, "x": x, "nam": (layers, head_W, head_b, h0, c0), "knob": knob_layers}


def test_process_runs_a_hand_built_nam_from_its_initial_state(files):
    folder = files["dir"]
    code, out, err = run("process.py", folder / "amp.nam", folder / "in.wav", folder / "out.wav", "--sequential")
    assert code == 0, err
    y, rate = sf.read(folder / "out.wav", dtype="float32")
    layers, head_W, head_b, h0, c0 = files["nam"]
    assert rate == RATE
    assert relative_error(y, reference_forward(files["x"][:, None], layers, head_W, head_b, False, h0, c0)[0]) < 1e-5


def test_process_a_conditioned_model_with_a_knob(files):
    folder = files["dir"]
    code, _, err = run("process.py", folder / "pedal.json", folder / "in.wav", folder / "out.wav")
    assert_one_line_error(code, err, "--knob")
    code, _, err = run("process.py", folder / "pedal.json", folder / "in.wav", folder / "out.wav", "--knob", "nan")
    assert_one_line_error(code, err, "finite number")
    assert not (folder / "out.wav").exists()
    code, _, err = run("process.py", folder / "pedal.json", folder / "in.wav", folder / "out.wav", "--knob", "0.3",
                       "--sequential")
    assert code == 0, err
    y, _ = sf.read(folder / "out.wav", dtype="float32")
    x_and_knob = np.stack([files["x"], np.full_like(files["x"], 0.3)], axis=1)
    assert relative_error(y, reference_forward(x_and_knob, *files["knob"], True)[0]) < 1e-5


def test_export_writes_both_formats_and_they_process_alike(files):
    folder = files["dir"]
    code, out, err = run("export.py", folder / "ours_skip1.npz", folder / "ours.json", "--name", "my pedal")
    assert code == 0 and "AIDA-X" in out, err
    document = json.loads((folder / "ours.json").read_text())
    assert document["in_skip"] == 1 and document["metadata"]["name"] == "my pedal"
    assert document["metadata"]["samplerate"] == RATE and document["metadata"]["esr"] == 0.01
    assert len(document["input_batch"]) == len(document["output_batch"]) > 1000
    code, out, err = run("export.py", folder / "ours_skip0.npz", folder / "ours.nam")
    assert code == 0, err
    assert json.loads((folder / "ours.nam").read_text())["sample_rate"] == RATE
    for name in ("ours_skip1.npz", "ours.json"):
        code, _, err = run("process.py", folder / name, folder / "in.wav", folder / f"{name}.wav")
        assert code == 0, err
    a, _ = sf.read(folder / "ours_skip1.npz.wav", dtype="float32")
    b, _ = sf.read(folder / "ours.json.wav", dtype="float32")
    assert np.array_equal(a, b)


def test_export_refusals(files):
    folder = files["dir"]
    code, _, err = run("export.py", folder / "ours_skip1.npz", folder / "x.nam")
    assert_one_line_error(code, err, "--no-skip")
    assert not (folder / "x.nam").exists()
    code, _, err = run("export.py", folder / "ours_skip1.npz", folder / "x.onnx")
    assert_one_line_error(code, err, ".nam")
    before = (folder / "amp.nam").read_bytes()
    code, _, err = run("export.py", folder / "ours_skip0.npz", folder / "amp.nam")
    assert_one_line_error(code, err, "exists")
    assert (folder / "amp.nam").read_bytes() == before
    (folder / "broken.nam").write_text((folder / "amp.nam").read_text()[:200])
    code, _, err = run("export.py", folder / "broken.nam", folder / "y.json")
    assert_one_line_error(code, err, "broken.nam: not valid JSON")
    code, _, err = run("process.py", folder / "broken.nam", folder / "in.wav", folder / "out.wav")
    assert_one_line_error(code, err, "broken.nam: not valid JSON")


@pytest.mark.parametrize("config, said", [
    (ModelConfig(hidden_size=32), None),                          # the defaults: every build plays it
    (ModelConfig(input_size=3, hidden_size=64), None),            # the largest size every build plays, 2 knobs
    (ModelConfig(hidden_size=48), ["the AIDA-X plugin cannot", "48 hidden units", "--hidden 40 or 64"]),
    (ModelConfig(hidden_size=4), ["4 hidden units", "--hidden 8"]),
    (ModelConfig(hidden_size=80), ["some builds of the AIDA-X plugin cannot", "80 hidden units"]),
    (ModelConfig(hidden_size=16, num_layers=2), ["the AIDA-X plugin cannot", "2 LSTM layers", "--layers 1"]),
    (ModelConfig(input_size=4, hidden_size=16), ["3 knob inputs", "at most 2 knobs"]),
    (ModelConfig(input_size=4, hidden_size=24), ["the AIDA-X plugin cannot", "24 hidden units", "3 knob inputs"]),
    (ModelConfig(input_size=4, hidden_size=24, num_layers=2), ["the AIDA-X plugin cannot", "2 LSTM layers",
                                                               "24 hidden units", "3 knob inputs"]),
])
def test_the_aidax_plugin_s_own_limits_are_told(config, said):
    """The AIDA-X plugin compiles a fixed list of architectures (aidax.AIDAX_PLAYER_SIZES)
    and cannot play any other file: one line says why, and what to train for it."""
    from lstm_core.files.aidax import aidax_player_problem

    problem = aidax_player_problem(config)
    if said is None:
        assert problem is None
    else:
        assert "\n" not in problem and all(part in problem for part in said), problem
        assert problem.startswith("some builds") == ("some builds of the AIDA-X plugin cannot" in said), problem
        assert ("--hidden" in problem) == (config.hidden_size not in (16, 24, 80))


def test_export_writes_a_file_the_aidax_plugin_cannot_play_with_a_note(files):
    """A .nam of 6 hidden units converted to AIDA-X JSON is written (RTNeural's run-time
    parser reads any size) and a note says the plugin does not play it; a model of 32 units
    gets no such note."""
    folder = files["dir"]
    code, out, err = run("export.py", folder / "amp.nam", folder / "amp.json")
    assert code == 0, err
    assert json.loads((folder / "amp.json").read_text())["layers"][0]["shape"][-1] == 6
    notes = [line for line in out.splitlines() if "AIDA-X plugin cannot play" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ") and "--hidden 8" in notes[0]
    config = ModelConfig(hidden_size=32)
    save_model(folder / "h32.npz", init_params(config, np.random.default_rng(3)), config, RATE, {"val_esr": 0.01})
    code, out, err = run("export.py", folder / "h32.npz", folder / "h32.json")
    assert code == 0 and "AIDA-X" in out and "cannot play" not in out, err


def fine_tune(folder, out: str, *flags):
    """train.py --init amp.nam on folder's dry/wet pair, quick settings; (code, stdout, stderr)."""
    return run("train.py", folder / "dry.wav", folder / "wet.wav", "--init", folder / "amp.nam", "--segment", "0.2",
               "--warmup", "200", "--processes", "1", "--out", folder / out, *flags)


def test_train_init_from_a_nam_keeps_its_architecture_and_weights(files):
    folder = files["dir"]
    rng = np.random.default_rng(2)
    x = (0.3 * rng.standard_normal(RATE * 3)).astype(np.float32)
    write_pair(folder, x, np.tanh(2 * x), RATE)
    code, _, err = run("train.py", folder / "dry.wav", folder / "wet.wav", "--init", folder / "amp.nam", "--hidden", "8",
                       "--out", folder / "refused")
    assert_one_line_error(code, err, "leave out --hidden")
    code, out, err = fine_tune(folder, "tuned", "--epochs", "1", "--lr", "1e-9")
    assert code == 0, err
    assert "init: starting from" in out
    params, config, meta = load_model(folder / "tuned" / "model.npz")
    start = read_model(folder / "amp.nam")
    assert config == start.config and meta["options"]["init"] == str((folder / "amp.nam").resolve())
    for name, value in start.params.items():
        assert np.abs(params[name] - value).max() < 1e-6, name          # lr 1e-9: still the file's weights
    code, _, err = run("train.py", folder / "dry.wav", folder / "wet.wav", "--init", folder / "pedal.json", "--out",
                       folder / "refused2")
    assert_one_line_error(code, err, "conditioned")


def test_a_fine_tune_never_ends_worse_than_its_starting_model(files):
    """The target is the starting model's own output and a little noise, so no epoch can do
    much better, and a learning rate of 0.5 makes every epoch far worse: the run keeps the
    starting model. (Its own output alone would give a zero gradient: the starting model,
    scored from the file's initial state and warmed up as process.py runs it, reproduces it
    exactly.)"""
    folder = files["dir"]
    sf.write(folder / "dry.wav", make_signal(RATE * 3, seed=3), RATE, subtype="FLOAT")
    code, _, err = run("process.py", folder / "amp.nam", folder / "dry.wav", folder / "wet.wav")
    assert code == 0, err
    wet, _ = sf.read(folder / "wet.wav", dtype="float32")
    noise = np.random.default_rng(4).standard_normal(wet.size).astype(np.float32)
    sf.write(folder / "wet.wav", wet + 0.01 * np.sqrt(np.mean(wet ** 2)) * noise, RATE, subtype="FLOAT")   # -40 dB
    code, out, err = fine_tune(folder, "tuned", "--epochs", "2", "--lr", "0.5")
    assert code == 0, err
    assert "init: the starting model's val ESR is" in out
    params, _, meta = load_model(folder / "tuned" / "model.npz")
    start = read_model(folder / "amp.nam")
    assert meta["epoch"] == 0 and meta["val_esr"] < 0.05           # its own output, up to the start of the val part
    assert all(np.array_equal(params[name], value) for name, value in start.params.items())
    history = (folder / "tuned" / "history.csv").read_text().splitlines()
    # every epoch worse than the start (a diverged one, NaN and rolled back, counts as worse)
    assert len(history) == 3 and not any(float(row.split(",")[2]) <= meta["val_esr"] for row in history[1:])
    page = (folder / "tuned" / "report.html").read_text()
    assert "the starting model stands" in page


def test_a_fine_tune_scores_its_start_from_the_files_own_state(files):
    """A .nam starts its streams from the state it carries, and so does the measurement of
    a fine-tune's starting model: on a separate validation pair (scored from its first
    sample, with nothing before it to warm up on) the start reproduces its own output."""
    folder = files["dir"]
    sf.write(folder / "dry.wav", make_signal(RATE * 3, seed=5), RATE, subtype="FLOAT")
    code, _, err = run("process.py", folder / "amp.nam", folder / "dry.wav", folder / "wet.wav", "--sequential")
    assert code == 0, err
    code, out, err = fine_tune(folder, "tuned", "--epochs", "1", "--lr", "1e-9", "--val-input", folder / "dry.wav",
                               "--val-target", folder / "wet.wav")
    assert code == 0, err
    _, _, meta = load_model(folder / "tuned" / "model.npz")
    assert meta["epoch"] == 0 and meta["val_esr"] < 1e-8, out


def test_aidax_gains_are_applied_as_aidax_applies_them(files):
    """in_gain scales the audio before the model (its skip included), out_gain the output
    after the skip, both in dB; an export keeps them, a .nam refuses them, --init too."""
    folder = files["dir"]
    rng = np.random.default_rng(11)
    layers, head_W, head_b = random_torch_layers(rng, 1, 5, 1)
    document = hand_aidax(layers, head_W, head_b, skip=1)
    document["in_gain"], document["out_gain"] = 6.0, -3.0
    write_json(folder / "gained.json", document)
    code, out, err = run("process.py", folder / "gained.json", folder / "in.wav", folder / "out.wav", "--sequential")
    assert code == 0 and "in_gain 6 dB" in out, err
    y, _ = sf.read(folder / "out.wav", dtype="float32")
    g_in, g_out = 10 ** (6.0 / 20), 10 ** (-3.0 / 20)
    expected = g_out * reference_forward(g_in * files["x"][:, None], layers, head_W, head_b, True)[0]
    assert relative_error(y, expected) < 1e-5
    code, _, err = run("export.py", folder / "gained.json", folder / "copy.json")
    assert code == 0, err
    copy = json.loads((folder / "copy.json").read_text())
    assert (copy["in_gain"], copy["out_gain"]) == (6.0, -3.0)
    code, _, err = run("export.py", folder / "gained.json", folder / "gained.nam")
    assert_one_line_error(code, err, "in_gain/out_gain")
    sf.write(folder / "dry.wav", files["x"], RATE)
    sf.write(folder / "wet.wav", np.tanh(files["x"]), RATE)
    code, _, err = run("train.py", folder / "dry.wav", folder / "wet.wav", "--init", folder / "gained.json", "--out",
                       folder / "refused")
    assert_one_line_error(code, err, "in_gain/out_gain")


def test_nam_level_calibration(files):
    folder = files["dir"]
    code, _, err = run("export.py", folder / "ours_skip0.npz", folder / "levels.nam", "--input-level-dbu", "12.5",
                       "--output-level-dbu", "-4")
    assert code == 0, err
    metadata = json.loads((folder / "levels.nam").read_text())["metadata"]
    assert metadata["input_level_dbu"] == 12.5 and metadata["output_level_dbu"] == -4.0
    code, _, err = run("export.py", folder / "levels.nam", folder / "again.nam")          # a .nam keeps its own
    assert code == 0, err
    assert json.loads((folder / "again.nam").read_text())["metadata"]["input_level_dbu"] == 12.5
    code, _, err = run("export.py", folder / "ours_skip1.npz", folder / "x.json", "--input-level-dbu", "3")
    assert_one_line_error(code, err, ".nam files only")
    code, _, err = run("export.py", folder / "ours_skip0.npz", folder / "y.nam", "--input-level-dbu", "nan")
    assert_one_line_error(code, err, "finite number of dBu")
