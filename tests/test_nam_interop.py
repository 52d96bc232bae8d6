""".nam files against Neural Amp Modeler's own Python package, both ways, where it is
installed (``pip install neural-amp-modeler``; it brings PyTorch, so it is not one of our
test dependencies and this module skips without it)."""

import json

import numpy as np
import pytest

from lstm_core.files.model_file import ModelFile
from lstm_core.inference import process_sequential
from lstm_core.model import ModelConfig
from lstm_core.files.formats import export_document, read_model

from helpers import make_signal, relative_error, spread_params, write_json

torch = pytest.importorskip("torch", reason="neural-amp-modeler (and PyTorch) not installed")
nam_from = pytest.importorskip("nam.models._from_nam", reason="neural-amp-modeler not installed")
nam_recurrent = pytest.importorskip("nam.models.recurrent", reason="neural-amp-modeler not installed")


@pytest.mark.parametrize("layers", [1, 2])
def test_our_nam_runs_the_same_in_nam(tmp_path, layers):
    config = ModelConfig(hidden_size=12, num_layers=layers, skip=False)
    rng = np.random.default_rng(layers)
    params = spread_params(config, rng, spread=0.3, dtype=np.float32)
    document = export_document(ModelFile(params, config, 48000, {}, "npz"), tmp_path / "ours.nam")
    net = nam_from.init_from_nam(json.loads(json.dumps(document)))
    net.eval()
    x = make_signal(2000)
    with torch.no_grad():                      # NAM starts from the initial state it read from the file
        y_nam = net._forward(torch.from_numpy(x)[None]).numpy().ravel()
    back = read_model(write_json(tmp_path / "ours.nam", document))
    y_ours, _ = process_sequential(back.params, back.config, x, initial=back.initial_state)
    assert relative_error(y_nam, y_ours) < 1e-5


@pytest.mark.parametrize("layers", [1, 2])
def test_nams_export_runs_the_same_here(tmp_path, layers):
    torch.manual_seed(layers)
    theirs = nam_recurrent.LSTM(hidden_size=8, num_layers=layers, sample_rate=44100)
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    theirs.eval()
    model = read_model(write_json(tmp_path / "theirs.nam", theirs._get_export_dict()))
    assert model.config == ModelConfig(1, 8, layers, skip=False) and model.sample_rate == 44100
    x = make_signal(2000)
    initial = tuple(torch.from_numpy(np.asarray(part))[:, None, :] for part in model.initial_state)
    with torch.no_grad():
        y_nam = theirs._forward(torch.from_numpy(x)[None], initial_state=initial).numpy().ravel()
    y_ours, _ = process_sequential(model.params, model.config, x, initial=model.initial_state)
    assert relative_error(y_ours, y_nam) < 1e-5
