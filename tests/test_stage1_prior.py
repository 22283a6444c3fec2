"""The stage-1 speaker prior: normalisation, silence, loading, and fine-tuning from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _stage1_helpers import rest_face, speech_like

from talkstudio.core.landmarks import STAGE1_POINTS, mouth_opening
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.metrics import to68
from talkstudio.core.stage1.model import Stage1Model
from talkstudio.core.stage1.prior import (
    PriorError,
    SpeakerNorm,
    close_silences,
    closed_mouth,
    fit_to_subject,
    load_prior,
    silent_frames,
)
from talkstudio.core.timing import SAMPLE_RATE, SAMPLES_PER_FRAME

P37 = list(STAGE1_POINTS)


def _faces(rng: np.random.Generator, frames: int = 40) -> np.ndarray:
    lm = np.repeat(rest_face()[None], frames, 0)
    lm[:, [*range(6, 11), *range(54, 60), *range(64, 68)], 1] += rng.uniform(0, 0.1, (frames, 1))
    return lm + rng.normal(0, 0.003, lm.shape)


def test_normalisation_round_trips_and_removes_size_and_place() -> None:
    rng = np.random.default_rng(0)
    lm = _faces(rng)
    norm = SpeakerNorm.from_landmarks(lm)
    assert norm.length == pytest.approx(np.linalg.norm(lm.mean(0)[36] - lm.mean(0)[45]))
    disp = norm.normalise(lm[:, P37])
    np.testing.assert_allclose(norm.denormalise(disp), lm[:, P37], atol=1e-5)
    np.testing.assert_allclose(disp.mean(0), 0.0, atol=1e-6)
    # the same motion on a face twice as large, somewhere else: the same normalised motion
    big = 2.0 * lm + np.array([0.3, -0.2, 1.0])
    other = SpeakerNorm.from_landmarks(big)
    np.testing.assert_allclose(other.normalise(big[:, P37]), disp, atol=1e-5)
    # a subject's own mean and length map the motion back onto that subject
    np.testing.assert_allclose(other.denormalise(disp), big[:, P37], atol=1e-5)
    with pytest.raises(ValueError, match="68, 3"):
        SpeakerNorm.from_landmarks(lm[:, :37])


def test_silent_frames_find_long_pauses_only() -> None:
    rng = np.random.default_rng(1)
    speech, _ = speech_like(1.0, rng)
    speech = speech + 0.05 * np.sin(np.arange(len(speech)) / 7.0).astype(np.float32)  # no gaps
    long_gap = np.full(int(0.6 * SAMPLE_RATE), 1e-5, np.float32)
    short_gap = np.zeros(int(0.12 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([speech, long_gap, speech, short_gap, speech])
    frames = -(-len(audio) // SAMPLES_PER_FRAME)
    silent = silent_frames(audio, frames)
    f = 25  # frames per second
    a, b = int(1.0 * f) + 1, int(1.6 * f) - 1
    assert silent[a:b].all()  # the 0.6 s pause
    s0, s1 = int(2.6 * f) + 1, int(2.72 * f)
    assert not silent[s0:s1].any()  # a 0.12 s stop inside speech is not a silence
    assert not silent[: int(f) - 1].any()


def test_silences_close_the_mouth_to_the_subjects_closed_shape() -> None:
    rng = np.random.default_rng(2)
    lm = _faces(rng, 60)
    closed = closed_mouth(lm[:, P37])
    opening = mouth_opening(lm)
    assert mouth_opening(to68(closed[None]))[0] <= np.percentile(opening, 20)
    wide = np.repeat(lm[np.argmax(opening)][None, P37], 30, 0)  # a wide-open prediction
    silent = np.zeros(30, bool)
    silent[5:20] = True
    out = close_silences(wide, silent, closed)
    got = mouth_opening(to68(out))
    shut = mouth_opening(to68(closed[None]))[0]
    span = opening.max() - opening.min()
    assert np.all(got[8:17] <= shut + 0.1 * span)  # inside the run: closed
    np.testing.assert_allclose(out[:5], wide[:5])  # outside: untouched
    np.testing.assert_allclose(out[20:], wide[20:])
    assert got[5] > got[8]  # ramps in


def _tiny_model() -> Stage1Model:
    cfg = Stage1Config(feature_dim=16, lm_ffn=32, dec_ffn=32, window=50)
    return Stage1Model(cfg, 8)


def test_missing_or_corrupt_prior_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PriorError, match=r"prior is missing.*make_prior"):
        load_prior(tmp_path / "nowhere")
    from talkstudio.core.stage1.prior_train import save_prior

    good = tmp_path / "good"
    save_prior(_tiny_model(), good, {"recipe": {}})
    assert load_prior(good).is_prior
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_bytes((good / "config.json").read_bytes())
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(PriorError, match="cannot be loaded"):
        load_prior(bad)
    # a subject's own stage-1 model is not a prior
    from talkstudio.core.checkpoint import save_model

    subj = tmp_path / "subject_model"
    m = _tiny_model()
    save_model(subj, "stage1", m.state_dict(), m.config.to_dict(), {"audio_in_dim": 8})
    with pytest.raises(PriorError, match="not the speaker prior"):
        load_prior(subj)


def test_fit_to_subject_maps_the_prior_onto_the_subject() -> None:
    rng = np.random.default_rng(3)
    lm = _faces(rng) * 1.7
    norm = SpeakerNorm.from_landmarks(lm)
    prior = _tiny_model()
    with torch.no_grad():
        prior.head.bias.normal_(0, 1)  # a prior that moves the mouth
    model = fit_to_subject(prior, norm, range_factor=1.5)
    disp = 0.01 * torch.randn(1, 4, 37, 3)
    np.testing.assert_allclose(
        model.to_points(disp).numpy(), norm.mean + disp.numpy() * norm.length * 1.5, atol=1e-5
    )
    assert float(prior.lm_scale[0]) == 1.0  # the prior itself is left as it was
    assert not model.is_prior
