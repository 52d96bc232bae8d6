"""Model files: a round trip without pickles, atomic writes, clear errors for bad files."""

import json

import numpy as np
import pytest

from lstm_core.files.model_file import ModelFileError
from lstm_core.files.npz import load_model, save_model, save_npz_atomic
from lstm_core.model import ModelConfig, init_params


def test_round_trip_is_bit_identical(tmp_path, rng):
    config = ModelConfig(hidden_size=6, num_layers=2, skip=False)
    params = init_params(config, rng)
    save_model(tmp_path / "model.npz", params, config, 48000, {"val_esr": 0.0123})
    loaded, loaded_config, meta = load_model(tmp_path / "model.npz")
    assert loaded_config == config and meta["sample_rate"] == 48000 and meta["val_esr"] == 0.0123
    for name in params:
        assert loaded[name].dtype == np.float32 and np.array_equal(loaded[name], params[name])
    with np.load(tmp_path / "model.npz", allow_pickle=False) as data:     # plain arrays only
        assert all(data[name].dtype != object for name in data.files)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]          # no temporary left


def test_bad_files_are_named_with_the_problem(tmp_path, rng):
    config = ModelConfig(hidden_size=4)
    params = init_params(config, rng)
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(ModelFileError, match="junk.npz: not a readable model file"):
        load_model(tmp_path / "junk.npz")
    np.savez(tmp_path / "foreign.npz", w=np.zeros(3))
    with pytest.raises(ModelFileError, match="not one of our model files"):
        load_model(tmp_path / "foreign.npz")
    wrong = dict(params, **{"lstm0.W_h": np.zeros((16, 3), np.float32)})
    save_model(tmp_path / "shape.npz", wrong, config, 44100)
    with pytest.raises(ModelFileError, match=r"lstm0.W_h has shape \(16, 3\)"):
        load_model(tmp_path / "shape.npz")
    nan = dict(params, **{"out.b": np.array([np.nan], np.float32)})
    save_model(tmp_path / "nan.npz", nan, config, 44100)
    with pytest.raises(ModelFileError, match="out.b holds NaN"):
        load_model(tmp_path / "nan.npz")


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_npz_atomic(path, {"a": np.ones(3)}, {"kind": "first"})
    with pytest.raises(TypeError):
        save_npz_atomic(path, {"a": np.ones(3)}, {"kind": object()})          # not JSON-able: fails midway
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(str(data["config.json"]))["kind"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]
