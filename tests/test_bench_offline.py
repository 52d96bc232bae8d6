"""benchmarks/offline.py runs end to end: initialised models by H, and model files with --model."""

import numpy as np

from lstm_core.files.npz import save_model
from lstm_core.model import ModelConfig, init_params

from helpers import run


def _rows(stdout):
    """The table's rows (model, precision, ..., vs sequential dB, largest sample dB)."""
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| model")]


def _equal_to_rounding(cell):
    """A "vs sequential" cell: "equal" (bit for bit) or a dB figure below -120."""
    return cell == "equal" or float(cell) < -120


def test_offline_benchmark_measures_models_by_size_and_from_files(tmp_path):
    code, stdout, stderr = run("benchmarks/offline.py", "--seconds", "1", "--hidden", "8", "--no-torch")
    assert code == 0, stderr
    (row,) = _rows(stdout)
    assert row[0] == "8" and row[1].startswith("float32") and float(row[2]) > 0
    assert _equal_to_rounding(row[-2])              # the default equals the sequential run to rounding
    config = ModelConfig(hidden_size=6)
    save_model(tmp_path / "model.npz", init_params(config, np.random.default_rng(1)), config, 44100)
    code, stdout, stderr = run("benchmarks/offline.py", "--seconds", "1", "--no-torch", "--model",
                               tmp_path / "model.npz", "--precision", "float64")
    assert code == 0, stderr
    (row,) = _rows(stdout)
    assert row[0].endswith("model.npz (H 6)") and row[1].startswith("float64") and _equal_to_rounding(row[-2])
