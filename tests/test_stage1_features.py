"""Stage-1 audio front end: frame alignment, formants, bad audio, resampling, wav2vec2 loading."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import lfilter

from talkstudio.core.errors import CheckpointError, MediaError
from talkstudio.core.stage1 import wav2vec2 as w2v
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.features import (
    MEL_FLOOR,
    AudioFrontEnd,
    load_driving_audio,
    log_mel,
    prepare_audio,
)
from talkstudio.core.stage1.formants import NEUTRAL_FREQS, formant_features

FS = 16000


def vowel(seconds: float, formants=((700, 80), (1200, 90), (2600, 120)), f0=120.0) -> np.ndarray:
    """A pulse train through three resonators: a vowel with known formants."""
    src = np.zeros(int(seconds * FS))
    src[:: int(FS / f0)] = 1.0
    y = src
    for f, bw in formants:
        r = np.exp(-np.pi * bw / FS)
        y = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / FS), r * r], y)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


@pytest.mark.parametrize("samples", [1, 100, 639, 640, 641, 16000, 16001])
def test_rows_follow_the_time_mapping(samples: int) -> None:
    rng = np.random.default_rng(samples)
    feats = AudioFrontEnd(Stage1Config())(0.1 * rng.standard_normal(samples))
    assert feats.shape == (-(-samples // 640), 4 * 80 + 6)
    assert np.all(np.isfinite(feats))


def test_mel_rows_belong_to_their_frame() -> None:
    audio = np.zeros(20 * 640, np.float32)
    audio[7 * 640 : 8 * 640] = 0.3 * np.random.default_rng(0).standard_normal(640)
    mel = log_mel(audio, 20, 80)  # [20, 320]
    floor = np.log10(MEL_FLOOR)
    energy = mel.mean(axis=1)
    assert int(np.argmax(energy)) == 7
    # Windows reach 120 samples into the neighbours, never further.
    np.testing.assert_allclose(mel[:6], floor, atol=1e-4)
    np.testing.assert_allclose(mel[9:], floor, atol=1e-4)
    assert energy[7] > energy[6] + 2 and energy[7] > energy[8] + 2


def test_formants_of_a_synthetic_vowel() -> None:
    feats = formant_features(vowel(1.0), 25)  # [25, 6] kHz
    med = np.median(feats[2:-2], axis=0)
    np.testing.assert_allclose(med[:3], [0.7, 1.2, 2.6], rtol=0.05)
    assert np.all(med[3:] < 0.4)


def test_silence_gives_finite_neutral_features() -> None:
    feats = AudioFrontEnd(Stage1Config())(np.zeros(16000, np.float32))
    assert np.all(np.isfinite(feats))
    np.testing.assert_allclose(feats[:, :320], np.log10(MEL_FLOOR), atol=1e-5)
    np.testing.assert_allclose(feats[:, 320:323], np.tile(NEUTRAL_FREQS, (25, 1)) / 1000)


def test_clipping_and_out_of_range_samples() -> None:
    x = 5.0 * vowel(0.5)  # far beyond full scale
    assert np.abs(prepare_audio(x)).max() == pytest.approx(1.0)
    fe = AudioFrontEnd(Stage1Config())
    a, b = fe(x), fe(np.clip(x, -1, 1))
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_gain_does_not_change_the_features() -> None:
    x = vowel(1.0)
    fe = AudioFrontEnd(Stage1Config())
    np.testing.assert_allclose(fe(0.05 * x), fe(x), atol=2e-3)
    raw = AudioFrontEnd(Stage1Config(normalize_loudness=False))
    assert np.abs(raw(0.05 * x) - raw(x)).max() > 0.5  # the normalisation is what does it


def test_gain_jitter_in_the_log_mel_domain_is_exact() -> None:
    import torch

    from talkstudio.core.stage1.features import log_mel_with_gain

    x = 0.2 * vowel(1.0)
    fe = AudioFrontEnd(Stage1Config(normalize_loudness=False))
    for db in (-6.0, 4.0):
        louder = fe(x * 10 ** (db / 20))
        got = log_mel_with_gain(torch.from_numpy(fe(x)), 80, torch.full((25,), db)).numpy()
        np.testing.assert_allclose(got, louder, atol=2e-3)
        assert np.abs(got - fe(x)).max() > 0.3


@pytest.mark.parametrize("rate", [8000, 48000])
def test_stereo_and_other_rates_are_resampled(rate: int) -> None:
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, 0.5 * tone], axis=1)  # [S, 2]
    for arr in (stereo, stereo.T):  # either orientation
        out = prepare_audio(arr, rate)
        assert out.dtype == np.float32 and out.ndim == 1
        assert len(out) == pytest.approx(FS, abs=2)
        assert dominant_hz(out, FS) == pytest.approx(440, abs=2)
        assert np.abs(out).max() == pytest.approx(0.375, rel=0.02)  # the channels' mean


def test_driving_audio_files_at_any_rate(tmp_path: Path) -> None:
    x16 = vowel(1.0)
    from scipy.signal import resample_poly

    for rate, channels in ((48000, 2), (8000, 1)):
        x = resample_poly(x16, rate // 8000, 2) if rate == 8000 else resample_poly(x16, 3, 1)
        data = np.stack([x, x], 1) if channels == 2 else x
        path = tmp_path / f"speech_{rate}.wav"
        sf.write(str(path), data, rate)
        got = load_driving_audio(path)
        assert abs(len(got) - len(x16)) <= 16
        n = min(len(got), len(x16))
        if rate == 48000:  # nothing lost: the waveform itself comes back
            assert np.corrcoef(got[:n], x16[:n])[0, 1] > 0.99
        feats = AudioFrontEnd(Stage1Config())(got)
        assert feats.shape[0] == 25 and np.all(np.isfinite(feats))


def test_bad_audio_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no samples"):
        prepare_audio(np.zeros(0))
    bad = np.ones(1000)
    bad[10] = np.nan
    with pytest.raises(MediaError, match="NaN"):
        prepare_audio(bad)
    with pytest.raises(MediaError, match="shape"):
        prepare_audio(np.zeros((2, 2, 2)))
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(MediaError):
        load_driving_audio(tmp_path / "notes.wav")


# -- wav2vec2 -------------------------------------------------------------------------------------
def save_tiny_wav2vec2(folder: Path) -> int:
    """A randomly initialised wav2vec2 (50 Hz, like the real one) saved as a local model."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(cfg).save_pretrained(str(folder))
    return cfg.hidden_size


@pytest.fixture
def fresh_wav2vec2():
    w2v.forget_loaded()
    yield
    w2v.forget_loaded()


def test_wav2vec2_loads_from_a_local_folder(tmp_path: Path, fresh_wav2vec2) -> None:
    import torch

    hidden = save_tiny_wav2vec2(tmp_path / "w2v")
    fe = AudioFrontEnd(Stage1Config(audio_features="wav2vec2", wav2vec2_path=str(tmp_path / "w2v")))
    assert fe.kind == "wav2vec2" and fe.in_dim == hidden + 6
    x = vowel(1.0)
    feats = fe(x)  # [25, 22]
    assert feats.shape == (25, hidden + 6)
    # Row i reads the 50 Hz states at n = 2 i + 0.375 (frame centre 640 i + 320).
    model = w2v.load_wav2vec2(str(tmp_path / "w2v"))
    from talkstudio.core.stage1.features import normalize_loudness

    y = normalize_loudness(x)
    y = (y - y.mean()) / np.sqrt(y.var() + 1e-7)
    with torch.inference_mode():
        h = model(torch.from_numpy(y)[None]).last_hidden_state[0].numpy()
    i = np.arange(1, 23)
    want = 0.625 * h[2 * i] + 0.375 * h[2 * i + 1]
    np.testing.assert_allclose(feats[i, :hidden], want, atol=1e-5)


def test_missing_wav2vec2_warns_once_and_falls_back(tmp_path: Path, fresh_wav2vec2) -> None:
    cfg = Stage1Config(audio_features="wav2vec2", wav2vec2_path=str(tmp_path / "absent"))
    with pytest.warns(w2v.FeatureOffWarning, match="wav2vec2 audio features are off"):
        fe = AudioFrontEnd(cfg)
    assert fe.kind == "mel" and fe.in_dim == 4 * 80 + 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert AudioFrontEnd(cfg).kind == "mel"  # said once, not again
    with pytest.raises(CheckpointError, match="not on this machine"):
        AudioFrontEnd(cfg, allow_fallback=False)


def test_stage1_trains_and_predicts_on_wav2vec2_features(tmp_path: Path, fresh_wav2vec2) -> None:
    import shutil

    from _stage1_helpers import write_envelope_subject

    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.infer import load_stage1, predict
    from talkstudio.core.stage1.train import train_stage1

    hidden = save_tiny_wav2vec2(tmp_path / "w2v")
    root = write_envelope_subject(tmp_path / "env", seconds=3.0)
    cfg = Stage1Config.from_preset(
        "preview",
        audio_features="wav2vec2",
        wav2vec2_path=str(tmp_path / "w2v"),
        steps=2,
        init="scratch",
    )
    result = run_job(train_stage1(root, cfg))
    model = load_stage1(root)
    assert model.config.audio_features == "wav2vec2" and model.audio_in_dim == hidden + 6
    assert result.scores is not None and np.isfinite(result.scores.lmd)
    assert predict(model, vowel(0.5)).shape == (13, 37, 3)
    shutil.rmtree(tmp_path / "w2v")  # the weights disappear: the model cannot run, and says why
    w2v.forget_loaded()
    with pytest.warns(w2v.FeatureOffWarning), pytest.raises(CheckpointError, match="wav2vec2"):
        predict(load_stage1(root), vowel(0.5))
