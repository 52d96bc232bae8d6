"""The plugin formats (.nam and AIDA-X .json): round trips through our exporter, and files
built here by hand from the published layouts, checked against the plain reference LSTM
of helpers.py (PyTorch's gate order, float64, one sample at a time)."""

import json
import math

import numpy as np
import pytest

from lstm_core.files.aidax import CHECK_TOLERANCE
from lstm_core.files.model_file import ModelFile, ModelFileError
from lstm_core.files.npz import save_model
from lstm_core.inference import process_sequential, rest_state
from lstm_core.model import ModelConfig, init_params
from lstm_core.files.nam import NAM_BURN_IN
from lstm_core.files.formats import check_vector_error, export_document, read_model

from helpers import (close, hand_aidax, hand_core_audio_ml, hand_nam, make_signal, random_torch_layers,
                     reference_forward, relative_error, spread_params, write_json)


@pytest.mark.parametrize("layer_count", [1, 2])
def test_hand_built_nam_matches_reference(tmp_path, layer_count):
    rng = np.random.default_rng(10 + layer_count)
    H = 5
    layers, head_W, head_b = random_torch_layers(rng, 1, H, layer_count)
    h0 = (0.5 * rng.standard_normal((layer_count, H))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((layer_count, H))).astype(np.float32)
    model = read_model(write_json(tmp_path / "hand.nam", hand_nam(layers, head_W, head_b, h0, c0)))
    assert model.config == ModelConfig(1, H, layer_count, skip=False)
    assert model.sample_rate == 48000 and model.meta["val_esr"] == 0.02 and model.meta["name"] == "by hand"
    x = make_signal()
    y, _ = process_sequential(model.params, model.config, x, initial=model.initial_state)
    reference, _, _ = reference_forward(x[:, None], layers, head_W, head_b, False, h0, c0)
    assert relative_error(y, reference) < 1e-5
    # the initial state matters at the start: from zeros, the first samples differ
    y_zero, _ = process_sequential(model.params, model.config, x)
    assert np.abs(y_zero[:5] - reference[:5]).max() > 1e-3


@pytest.mark.parametrize("layer_count,skip", [(1, 1), (2, 0)])
def test_hand_built_aidax_matches_reference(tmp_path, layer_count, skip):
    rng = np.random.default_rng(20 + layer_count)
    H = 6
    layers, head_W, head_b = random_torch_layers(rng, 1, H, layer_count)
    model = read_model(write_json(tmp_path / "hand.json", hand_aidax(layers, head_W, head_b, skip=skip)))
    assert model.config == ModelConfig(1, H, layer_count, skip=bool(skip))
    assert model.sample_rate == 44100
    x = make_signal()
    y, _ = process_sequential(model.params, model.config, x)
    assert relative_error(y, reference_forward(x[:, None], layers, head_W, head_b, bool(skip))[0]) < 1e-5


@pytest.mark.parametrize("layer_count,inputs,skip", [(1, 1, 1), (2, 1, 0), (1, 2, 1)])
def test_hand_built_core_audio_ml_matches_reference(tmp_path, layer_count, inputs, skip):
    """AIDA-X's trainer's own PyTorch files (in the AIDA-X model collections too) run as
    the reference LSTM in PyTorch's layout does, with a knob as the second input."""
    rng = np.random.default_rng(25 + layer_count + inputs)
    layers, head_W, head_b = random_torch_layers(rng, inputs, 5, layer_count)
    model = read_model(write_json(tmp_path / "trainer.json", hand_core_audio_ml(layers, head_W, head_b, inputs, skip)))
    assert model.config == ModelConfig(inputs, 5, layer_count, skip=bool(skip))
    assert model.sample_rate is None and any("names no sample rate" in note for note in model.notes)
    x = make_signal()
    controls = (0.3,) if inputs == 2 else ()
    y, _ = process_sequential(model.params, model.config, x, controls=controls)
    x_in = np.stack([x, np.full_like(x, 0.3)], axis=1) if inputs == 2 else x[:, None]
    assert relative_error(y, reference_forward(x_in, layers, head_W, head_b, bool(skip))[0]) < 1e-5


def test_conditioned_aidax_with_a_constant_knob(tmp_path):
    rng = np.random.default_rng(30)
    layers, head_W, head_b = random_torch_layers(rng, 2, 4, 1)
    model = read_model(write_json(tmp_path / "knob.json", hand_aidax(layers, head_W, head_b, inputs=2, skip=1)))
    assert model.config.input_size == 2
    x = make_signal()
    for knob in (0.0, 0.8):
        y, _ = process_sequential(model.params, model.config, x, controls=(knob,))
        x_and_knob = np.stack([x, np.full_like(x, knob)], axis=1)
        assert relative_error(y, reference_forward(x_and_knob, layers, head_W, head_b, True)[0]) < 1e-5
    with pytest.raises(ValueError, match="control value"):
        process_sequential(model.params, model.config, x)


def test_aidax_check_vectors_are_reproduced(tmp_path):
    """A file's output_batch (computed here in float32 by the reference) is reproduced from
    its input_batch; a file whose vectors do not match is refused."""
    rng = np.random.default_rng(40)
    layers, head_W, head_b = random_torch_layers(rng, 1, 8, 2)
    x = make_signal(512, seed=3)
    y32 = reference_forward(x[:, None], layers, head_W, head_b, True)[0].astype(np.float32)
    vectors = ([[float(v)] for v in x], [float(v) for v in y32])
    model = read_model(write_json(tmp_path / "checked.json", hand_aidax(layers, head_W, head_b, vectors=vectors)))
    error = check_vector_error(model, x[:, None], y32)
    assert error < CHECK_TOLERANCE
    assert any("reproduces its check vectors" in note for note in model.notes)
    wrong = (vectors[0], [v * 1.01 for v in vectors[1]])
    with pytest.raises(ModelFileError, match="does not reproduce"):
        read_model(write_json(tmp_path / "wrong.json", hand_aidax(layers, head_W, head_b, vectors=wrong)))


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("suffix", [".nam", ".json"])
@pytest.mark.parametrize("layer_count", [1, 2])
@pytest.mark.parametrize("hidden", [3, 12, 16, 32])
def test_round_trip(tmp_path, suffix, layer_count, hidden):
    skip = suffix == ".json" and hidden % 2 == 0          # .nam cannot hold a skip; AIDA-X takes both
    config = ModelConfig(hidden_size=hidden, num_layers=layer_count, skip=skip)
    params = spread_params(config, np.random.default_rng(hidden * 10 + layer_count), spread=0.3, dtype=np.float32)
    ours = ModelFile(params, config, 44100, {"val_esr": 0.0123, "date": "2026-11-24T12:00:00"}, "npz")
    path = write_json(tmp_path / f"model{suffix}", export_document(ours, tmp_path / f"model{suffix}", "round trip"))
    back = read_model(path)
    assert back.config == config and back.sample_rate == 44100
    assert back.meta["name"] == "round trip" and math.isclose(back.meta["val_esr"], 0.0123)
    for name, value in params.items():
        assert back.params[name].dtype == np.float32
        assert np.array_equal(back.params[name], value), name                 # bit for bit
    x = make_signal(800, seed=hidden)
    if suffix == ".nam":
        # the file starts from the state after 48000 samples of silence, as NAM's trainer does
        initial = rest_state(params, config, NAM_BURN_IN)
        for mine, theirs in zip(initial, back.initial_state):
            assert np.array_equal(mine, theirs)
    else:
        initial = None
    y_ours, _ = process_sequential(params, config, x, initial=initial)
    y_back, _ = process_sequential(back.params, back.config, x, initial=back.initial_state)
    assert close(y_back, y_ours, 1e-6)


def test_nam_round_trip_keeps_the_files_initial_state(tmp_path):
    """.nam -> ours -> .nam writes the same weights list, initial state included."""
    rng = np.random.default_rng(50)
    layers, head_W, head_b = random_torch_layers(rng, 1, 4, 2)
    h0, c0 = (0.3 * rng.standard_normal((2, 4))).astype(np.float32), (0.3 * rng.standard_normal((2, 4))).astype(np.float32)
    original = hand_nam(layers, head_W, head_b, h0, c0)
    model = read_model(write_json(tmp_path / "in.nam", original))
    again = export_document(model, tmp_path / "out.nam")
    assert np.array_equal(np.array(again["weights"], np.float32), np.array(original["weights"], np.float32))


def test_nam_export_of_a_skip_model_says_what_to_do(tmp_path):
    config = ModelConfig(hidden_size=4, skip=True)
    model = ModelFile(init_params(config, np.random.default_rng(0)), config, 44100, {}, "npz")
    with pytest.raises(ModelFileError, match="--no-skip"):
        export_document(model, tmp_path / "x.nam")


def test_our_npz_reads_through_the_same_door(tmp_path):
    config = ModelConfig(hidden_size=4, skip=False)
    params = init_params(config, np.random.default_rng(0))
    save_model(tmp_path / "model.npz", params, config, 22050, {"val_esr": 0.5})
    model = read_model(tmp_path / "model.npz")
    assert model.kind == "npz" and model.sample_rate == 22050 and model.initial_state is None
    assert all(np.array_equal(model.params[k], params[k]) for k in params)


# ----------------------------------------------------------------------------- bad files

def good_nam():
    rng = np.random.default_rng(60)
    layers, head_W, head_b = random_torch_layers(rng, 1, 3, 1)
    return hand_nam(layers, head_W, head_b, np.zeros((1, 3)), np.zeros((1, 3)))


def good_aidax():
    rng = np.random.default_rng(61)
    return hand_aidax(*random_torch_layers(rng, 1, 3, 1))


def good_core_audio_ml(unit="LSTM"):
    rng = np.random.default_rng(62)
    return hand_core_audio_ml(*random_torch_layers(rng, 1, 3, 1), unit=unit)


def damaged(document, change):
    document = json.loads(json.dumps(document))
    change(document)
    return document


BAD_FILES = {
    "truncated.nam": (lambda: json.dumps(good_nam())[:500], "not valid JSON"),
    "truncated.json": (lambda: json.dumps(good_aidax())[:300], "the file may be truncated"),
    "count.nam": (lambda: json.dumps(damaged(good_nam(), lambda d: d["weights"].pop())), "weights, but an LSTM"),
    "count.json": (lambda: json.dumps(damaged(good_aidax(), lambda d: d["layers"][0]["weights"][1].pop())),
                   "wrong weight count"),
    "ragged.json": (lambda: json.dumps(damaged(good_aidax(), lambda d: d["layers"][0]["weights"][1][0].pop())),
                    "not a regular array"),
    "shape.json": (lambda: json.dumps(damaged(good_aidax(), lambda d: d["layers"][0].update(shape=[None, None, 4]))),
                   "has shape"),
    "wavenet.nam": (lambda: json.dumps(damaged(good_nam(), lambda d: d.update(architecture="WaveNet"))),
                    "a WaveNet model"),
    "gru.json": (lambda: json.dumps(damaged(good_aidax(), lambda d: d["layers"][0].update(type="gru"))),
                 "a GRU layer"),
    "nan.nam": (lambda: json.dumps(damaged(good_nam(), lambda d: d["weights"].__setitem__(3, float("nan")))),
                "NaN"),
    "nan.json": (lambda: json.dumps(damaged(good_aidax(), lambda d: d["layers"][1]["weights"][1].__setitem__(
        0, float("nan")))), "NaN"),
    "empty.nam": (lambda: "", "not valid JSON"),
    "nested.nam": (lambda: json.dumps(damaged(good_nam(), lambda d: d.update(weights=[d["weights"]]))),
                   "one flat list"),
    "list.json": (lambda: "[1, 2, 3]", "not an AIDA-X"),
    "skip2.json": (lambda: json.dumps(damaged(good_aidax(), lambda d: d.update(in_skip=2))), "in_skip"),
    "comma.json": (lambda: json.dumps(good_aidax()).replace(", ", " ", 1), "the file is damaged there"),
    "trainer-gru.json": (lambda: json.dumps(good_core_audio_ml(unit="GRU")), "its recurrent unit is 'GRU'"),
    "trainer-count.json": (lambda: json.dumps(damaged(good_core_audio_ml(), lambda d: d["state_dict"][
        "rec.weight_hh_l0"].pop())), "\"rec.weight_hh_l0\" has shape"),
    "trainer-missing.json": (lambda: json.dumps(damaged(good_core_audio_ml(), lambda d: d["state_dict"].pop(
        "lin.bias"))), "no \"lin.bias\""),
    "trainer-size.json": (lambda: json.dumps(damaged(good_core_audio_ml(), lambda d: d["model_data"].update(
        hidden_size="3"))), "\"hidden_size\" is '3'"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_get_a_clear_error(tmp_path, name):
    text, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text())
    with pytest.raises(ModelFileError) as caught:
        read_model(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="unknown model format"):
        read_model(tmp_path / "model.onnx")
    with pytest.raises(ModelFileError, match="no such file"):
        read_model(tmp_path / "gone.nam")


def test_free_form_metadata_never_breaks_an_export(tmp_path):
    """Community files carry what they like in their metadata: odd dates, words for the ESR,
    absurd rates, no rate. Reading keeps what makes sense; exporting never fails on it."""
    rng = np.random.default_rng(70)
    document = hand_aidax(*random_torch_layers(rng, 1, 3, 1), skip=0)
    document["metadata"] = {"name": 7, "date": "last tuesday", "esr": "low", "samplerate": 1e12}
    model = read_model(write_json(tmp_path / "odd.json", document))
    assert model.sample_rate is None and model.meta["val_esr"] is None and model.meta["date"] is None
    nam = export_document(model, tmp_path / "odd.nam")
    assert nam["sample_rate"] == 48000 and any("names no sample rate" in note for note in model.notes)
    assert "samplerate" not in export_document(model, tmp_path / "again.json")["metadata"]
    for written, read in (("48000", 48000), (" 44100 ", 44100), ("fast", None), ("1e12", None)):
        document["metadata"] = {"samplerate": written}     # community files often write the rate as a string
        model = read_model(write_json(tmp_path / "rate.json", document))
        assert model.sample_rate == read and any("names no sample rate" in note for note in model.notes) == (not read)


def test_conditioned_model_to_nam_says_what_to_do(tmp_path):
    rng = np.random.default_rng(71)
    model = read_model(write_json(tmp_path / "knob.json", hand_aidax(*random_torch_layers(rng, 2, 3, 1), inputs=2,
                                                                     skip=0)))
    with pytest.raises(ModelFileError, match="AIDA-X .json instead"):
        export_document(model, tmp_path / "knob.nam")


def test_empty_check_vectors_check_nothing_and_a_gain_must_be_a_number(tmp_path):
    rng = np.random.default_rng(72)
    layers = random_torch_layers(rng, 1, 3, 1)
    model = read_model(write_json(tmp_path / "empty.json", hand_aidax(*layers, vectors=([], []))))
    assert not any("check vectors" in note for note in model.notes)
    document = hand_aidax(*layers)
    document["out_gain"] = "loud"
    with pytest.raises(ModelFileError, match="out_gain"):
        read_model(write_json(tmp_path / "gain.json", document))


def test_the_community_s_newer_layout_reads_as_aidax_plays_it(tmp_path):
    """As aidadsp-lv2's Helix and Moon files are written (a census of the 47 public files,
    RESULTS.md): no in_skip (no skip), no metadata object but a top-level "samplerate" as a
    string, "author" and "esr", and out_gain as a JSON integer in dB."""
    rng = np.random.default_rng(73)
    document = hand_aidax(*random_torch_layers(rng, 1, 4, 1))
    del document["in_skip"], document["metadata"]
    document.update(samplerate="48000", author="someone", esr=0.0123, out_gain=-4)
    model = read_model(write_json(tmp_path / "helix.json", document))
    assert model.sample_rate == 48000 and not model.config.skip
    assert model.gains == pytest.approx((1.0, 10 ** (-4 / 20)))
