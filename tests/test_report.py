"""The run report: train.py writes it, every embedded image and clip decodes, the ESR on
the page is the model file's, the comparison is ordered, and bad run folders get one line."""

import base64
import io
import shutil
import struct
from html.parser import HTMLParser

import numpy as np
import pytest
import soundfile as sf

from lstm_core.files.npz import load_model, load_npz, save_npz_atomic
from run_report.figures import STRETCH_SECONDS, transient_start
from run_report.verdict import advice, grade
from run_report.run import distinct_names

from helpers import assert_one_line_error, run, write_pair

RATE = 11025
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Embedded(HTMLParser):
    """Collects the page's data-URI images and clips, and the element holding the ESR."""

    def __init__(self):
        super().__init__()
        self.images, self.clips, self.esr, self.rows = [], [], None, []
        self._in_esr = self._in_run_row = False
        self._cells = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        src = attrs.get("src", "")
        if tag == "img":
            self.images.append(src)
        if tag == "audio":
            self.clips.append(src)
        if attrs.get("id") == "val-esr":
            self.esr = {"value": attrs["data-value"], "text": ""}
            self._in_esr = True
        if tag == "tr" and attrs.get("class") == "run":
            self._in_run_row, self._cells = True, []

    def handle_endtag(self, tag):
        if tag == "b":
            self._in_esr = False
        if tag == "tr" and self._in_run_row:
            self.rows.append(self._cells)
            self._in_run_row = False

    def handle_data(self, data):
        if self._in_esr:
            self.esr["text"] += data
        if self._in_run_row:
            self._cells.append(data)


def parse(path):
    parser = Embedded()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def data_uri(src, mime):
    prefix = f"data:{mime};base64,"
    assert src.startswith(prefix), src[:40]
    return base64.b64decode(src[len(prefix):])


def png_size(data):
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short real run of train.py on a generated pair whose target lags by 3 samples."""
    folder = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(9)
    x = (0.3 * rng.standard_normal(RATE * 3)).astype(np.float32)
    wet = np.concatenate([np.zeros(3, np.float32), np.tanh(2 * x[:-3])])
    write_pair(folder, x, wet, RATE)
    code, out, err = run("train.py", "dry.wav", "wet.wav", "--epochs", "3", "--segment", "0.2",   # relative paths
                         "--warmup", "200", "--processes", "1", "--out", "run", cwd=folder)
    assert code == 0, err
    return folder, out


def test_train_py_writes_a_self_contained_report(trained):
    folder, out = trained
    page = folder / "run" / "report.html"
    assert "report: run/report.html" in out
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text and "https://" not in text
    embedded = parse(page)
    assert len(embedded.images) == 2
    for src in embedded.images:
        width, height = png_size(data_uri(src, "image/png"))
        assert width > 200 and height > 200
    for name in ("curves.png", "prediction.png"):
        assert png_size((folder / "run" / name).read_bytes())[0] > 200
    _, _, meta = load_model(folder / "run" / "model.npz")
    val_samples = round(meta["pair"]["val_seconds"] * RATE)
    assert len(embedded.clips) == 3                                   # input, target, prediction
    for src in embedded.clips:
        samples, rate = sf.read(io.BytesIO(data_uri(src, "audio/wav")))
        assert rate == RATE and samples.shape == (min(val_samples, 5 * RATE),)
    assert "3 sample(s)" in text                                      # the delay found is reported
    gain = meta["train"]["input_gain"]                                # the input (RMS 0.3) trained as if louder
    assert gain > 3 and f"{gain:.3g} times louder" in text
    assert f"prewarm {meta['train']['prewarm']}" in text
    assert meta["train"]["chrono"] == 0.0 and "random weights" in text     # the default start: the forget bias +1
    assert "chrono" not in text


def test_the_esr_on_the_page_is_the_model_files(trained):
    folder, _ = trained
    _, _, meta = load_model(folder / "run" / "model.npz")
    esr = parse(folder / "run" / "report.html").esr
    assert float(esr["value"]) == meta["val_esr"]
    assert esr["text"] == f"{meta['val_esr']:.4g}"


def copy_run(source, target, val_esr):
    """A copy of a run whose model file claims another val ESR (for the comparison)."""
    shutil.copytree(source, target)
    arrays, meta = load_npz(target / "model.npz")
    meta["val_esr"] = val_esr
    save_npz_atomic(target / "model.npz", arrays, meta)
    return target


def test_comparison_lists_every_run_best_first(trained, tmp_path):
    folder, _ = trained
    runs = [copy_run(folder / "run", tmp_path / name, esr) for name, esr in
            (("mid", 0.02), ("worst", 0.4), ("best", 0.001))]
    code, out, err = run("report.py", *runs, "--out", tmp_path / "compare.html")
    assert code == 0, err
    rows = parse(tmp_path / "compare.html").rows
    assert [row[1] for row in rows] == ["best", "mid", "worst"]
    assert [float(row[2]) for row in rows] == [0.001, 0.02, 0.4]
    code, _, err = run("report.py", *runs, "--out", tmp_path / "compare.html")
    assert_one_line_error(code, err, "exists")
    code, _, err = run("report.py", *runs)
    assert_one_line_error(code, err, "--out")


def test_comparison_tells_apart_runs_with_the_same_name(trained, tmp_path):
    folder, _ = trained
    runs = [copy_run(folder / "run", tmp_path / parent / "amp", esr) for parent, esr in (("monday", 0.02), ("friday", 0.01))]
    code, _, err = run("report.py", *runs, runs[0], "--out", tmp_path / "compare.html")    # one named twice
    assert code == 0, err
    assert [row[1] for row in parse(tmp_path / "compare.html").rows] == ["friday/amp", "monday/amp"]
    assert distinct_names([tmp_path / "a", tmp_path / "b" / "c"]) == ["a", "c"]


def test_missing_or_damaged_history_is_one_line(trained, tmp_path):
    folder, _ = trained
    broken = copy_run(folder / "run", tmp_path / "broken", 0.01)
    (broken / "history.csv").unlink()
    code, _, err = run("report.py", broken)
    assert_one_line_error(code, err, "history.csv: no such file")
    (broken / "history.csv").write_text("epoch,train_loss\n1,oops\n")
    code, _, err = run("report.py", broken)
    assert_one_line_error(code, err, "history.csv: damaged")
    (broken / "history.csv").write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = run("report.py", broken)
    assert_one_line_error(code, err, "history.csv")
    code, _, err = run("report.py", tmp_path / "nowhere")
    assert_one_line_error(code, err, "no such run folder")


def test_report_without_the_source_audio_still_has_curves(trained, tmp_path):
    folder, _ = trained
    moved = copy_run(folder / "run", tmp_path / "moved", 0.01)
    arrays, meta = load_npz(moved / "model.npz")
    meta["options"]["input"] = str(tmp_path / "gone.wav")
    save_npz_atomic(moved / "model.npz", arrays, meta)
    code, out, err = run("report.py", moved)
    assert code == 0, err
    embedded = parse(moved / "report.html")
    assert len(embedded.images) == 1 and not embedded.clips
    assert "gone.wav: no such file" in (moved / "report.html").read_text()


def test_the_report_at_the_end_of_a_run_uses_its_dataset_and_reads_no_pair_again(trained, tmp_path, monkeypatch):
    """A run hands its report the dataset it trained on: the page is the same as one
    report.py writes from the files, and the pair is not read a second time."""
    import run_report
    import run_report.run
    from audio_io.dataset import PairOptions, load_dataset

    folder, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(folder / "run", copy)
    _, _, meta = load_model(copy / "model.npz")
    data = load_dataset(PairOptions.from_dict(meta["options"]).located(copy))
    from_files = run_report.write_report(copy).read_text()

    def no_reading(_options):
        raise AssertionError("the pair was read again")

    monkeypatch.setattr(run_report.run, "load_dataset", no_reading)
    assert run_report.write_report(copy, data).read_text() == from_files


def test_a_failing_report_never_fails_the_run(trained, monkeypatch, capsys):
    folder, _ = trained
    import run_report
    from capture.session import write_run_report
    from lstm_core.run import Reporter

    def broken(_folder, _data=None):
        raise RuntimeError("the disk is full\nsecond line")

    class Notes(Reporter):
        lines = []

        def note(self, text):
            self.lines.append(text)

    monkeypatch.setattr(run_report, "write_report", broken)
    write_run_report(folder / "run", Notes())                # must not raise
    assert Notes.lines == [f"report: not written (the disk is full); try again with  python report.py "
                           f"{folder / 'run'}"]
    assert (folder / "run" / "model.npz").is_file()


@pytest.mark.parametrize("esr,expected", [(0.005, "great"), (0.02, "good"), (0.05, "acceptable"), (0.2, "poor"),
                                          (0.3, "something went wrong"), (0.9, "something went wrong")])
def test_grades(esr, expected):
    assert grade(esr)[0] == expected


def test_a_diverged_epoch_is_shown_not_refused(trained, tmp_path):
    """An epoch whose loss went to NaN is part of the run's story: the report is written,
    the curve has a gap, and the page says so and suggests a lower learning rate."""
    folder, _ = trained
    diverged = copy_run(folder / "run", tmp_path / "diverged", 0.05)
    lines = (diverged / "history.csv").read_text().splitlines()
    lines.append(f"{len(lines)},nan,inf,1000,99.5")
    (diverged / "history.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run("report.py", diverged)
    assert code == 0, err
    text = (diverged / "report.html").read_text()
    assert "1 epoch(s) diverged" in text and f"(epoch {len(lines) - 1})" in text and "--lr 0.005" in text
    assert len(parse(diverged / "report.html").images) == 2


def test_a_moved_run_folder_still_finds_the_pair_it_holds(trained, tmp_path):
    """The demo pair lives in the run folder, stored by the path it had when training ran:
    the report finds it in the folder wherever the folder is now."""
    folder, _ = trained
    moved = copy_run(folder / "run", tmp_path / "moved_demo", 0.01)
    arrays, meta = load_npz(moved / "model.npz")
    for key, name in (("input", "dry.wav"), ("target", "wet.wav")):
        shutil.copy(folder / name, moved / name)
        meta["options"][key] = f"runs/{moved.name}/{name}"           # relative to a cwd long gone
    save_npz_atomic(moved / "model.npz", arrays, meta)
    code, _, err = run("report.py", moved)
    assert code == 0, err
    assert len(parse(moved / "report.html").clips) == 3


def test_a_model_file_without_run_facts_still_gets_a_report(trained, tmp_path):
    folder, _ = trained
    bare = copy_run(folder / "run", tmp_path / "bare", 0.02)
    arrays, meta = load_npz(bare / "model.npz")
    for key in ("options", "pair", "train", "device", "parameters", "date", "trained_seconds"):
        meta.pop(key)
    save_npz_atomic(bare / "model.npz", arrays, meta)
    code, _, err = run("report.py", bare)
    assert code == 0, err
    assert "does not name the pair it was trained on" in (bare / "report.html").read_text()


def test_the_transient_is_a_loud_attack_not_a_faint_click():
    """A faint click over a noise floor rises more in dB than a loud attack over a sustained
    note; the stretch shown must be the attack (the old rule, rise in dB alone, chose 490)."""
    rate = 1000
    n = np.arange(4 * rate)
    target = 1e-5 * np.random.default_rng(0).standard_normal(n.size)   # a noise floor, -100 dB
    target[500:505] += 1e-3                                              # a faint click
    swell = np.clip((n - 1000) / 1500, 0, 1)                             # a note swelling in...
    target += np.where(n < 2500, 0.05 * swell, 0.5) * np.sin(0.3 * n)   # ...and a loud attack at 2500
    start = transient_start(target, rate)
    assert start < 2500 < start + STRETCH_SECONDS * rate


def test_advice_on_alignment_and_fine_tuning():
    leading = advice(0.05, {"pair": {"delay": -40, "aligned": False}}, 10, 5)
    assert "LEADS the input by 40 samples" in leading[0]
    lagging = advice(0.05, {"pair": {"delay": 12, "aligned": False}}, 10, 5)
    assert "lags the input by 12 sample(s) (not compensated)" in lagging[0]
    tuned = advice(0.05, {"model": {"hidden_size": 8}, "options": {"init": "/x/amp.nam"}}, 10, 5)
    assert not any("--hidden" in tip for tip in tuned)              # --init keeps the architecture
    kept = advice(0.05, {"train": {"lr": 0.004}, "options": {"init": "/x/amp.nam"}}, 10, 0)
    assert "--lr 0.0004" in kept[0] and not any("Train longer" in tip for tip in kept)


def test_a_larger_model_is_one_every_aida_x_build_plays():
    """The advice used to double the size: 80 for a 40-unit model (train.py's size for a
    high-gain pair), a size only some AIDA-X builds play."""
    def suggested(hidden):
        tips = [tip for tip in advice(0.05, {"model": {"hidden_size": hidden}}, 10, 5) if "--hidden" in tip]
        return tips[0] if tips else None
    assert suggested(32) == "Try a larger model: --hidden 64."
    assert suggested(40) == "Try a larger model: --hidden 64."
    assert suggested(12) == "Try a larger model: --hidden 20."
    assert suggested(24) == "Try a larger model: --hidden 40."
    assert suggested(2) == "Try a larger model: --hidden 8."
    assert suggested(64) is None and suggested(80) is None


def test_report_from_another_folder_finds_the_audio(trained, tmp_path):
    """The run stores absolute paths, so report.py works from any working directory."""
    folder, _ = trained
    code, out, err = run("report.py", folder / "run", cwd=tmp_path)
    assert code == 0, err
    assert len(parse(folder / "run" / "report.html").clips) == 3


def test_the_page_names_a_fresh_model_s_start():
    """A chrono start is named with its span; the forget bias +1, or a model file from before
    chrono, is plain random weights."""
    from run_report.page import _fresh_start

    assert _fresh_start({"chrono": 50.0}) == "random weights, chrono initialisation over 1 to 50 samples"
    assert _fresh_start({"chrono": 0.0}) == _fresh_start({}) == "random weights"
    race = {"starts": [0.0, 50.0], "heat": {"budget": 12.0, "epochs": 1000}, "best_esr": [0.05, 0.02], "won": 50.0,
            "decided": True}
    assert _fresh_start({"chrono": 0.0}, {"heat": race["heat"], "decided": False}) == "random weights"   # under way
    assert _fresh_start({"chrono": 50.0}, race) == ("random weights, chrono initialisation over 1 to 50 samples; it "
                                                    "won a race of 12 s a start against the forget-gate bias +1 (best "
                                                    "val ESR 0.02 against 0.05)")
    capped = {**race, "heat": {"budget": 60.0, "epochs": 3, "windows": 96}}          # heats since 2026-12-02
    assert "; it won a race of 60 s or 3 epochs a start against" in _fresh_start({"chrono": 50.0}, capped)
    race = {**race, "heat": {"budget": None, "epochs": 3}, "best_esr": [0.001, None], "won": 0.0}
    assert _fresh_start({"chrono": 0.0}, race) == ("random weights; it won a race of 3 epochs a start against the "
                                                   "chrono initialisation (best val ESR 0.001 against none)")
