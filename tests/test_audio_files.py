"""audio_io.files: float32 in, atomic writes out, clear errors."""

import numpy as np
import pytest
import soundfile as sf

from audio_io.files import AudioError, read_audio, write_audio_atomic


def test_8bit_unsigned_wav_reads_as_float32(tmp_path):
    path = tmp_path / "u8.wav"
    ramp = np.linspace(-1, 1, 256, endpoint=False).astype(np.float32)
    sf.write(str(path), ramp, 11025, subtype="PCM_U8")
    data, rate = read_audio(path)
    assert rate == 11025 and data.dtype == np.float32 and data.shape == (256, 1)
    assert np.abs(data[:, 0] - ramp).max() <= 1 / 128


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.wav"
    write_audio_atomic(path, np.zeros(100, np.float32), 44100, "PCM_24")
    assert sf.info(str(path)).subtype == "PCM_24"
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_missing_and_unreadable_files_get_one_clear_error(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="junk.wav: cannot be read as audio"):
        read_audio(junk)


@pytest.mark.parametrize("name,subtype", [
    ("a.wav", "PCM_24"), ("a.flac", "PCM_16"), ("a.aiff", "PCM_16"), ("a.ogg", "VORBIS"), ("a.wav", "FLOAT"),
])
def test_formats_read_as_float32(tmp_path, name, subtype):
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(str(tmp_path / name), tone, 8000, subtype=subtype)
    data, rate = read_audio(tmp_path / name)
    assert rate == 8000 and data.dtype == np.float32 and data.shape[1] == 1
    lossy = subtype == "VORBIS"
    assert abs(data.shape[0] - 8000) <= (2048 if lossy else 0)
    if not lossy:
        assert np.abs(data[:, 0] - tone).max() < 1e-3
