"""The prior's linear part: phone posteriors to landmark motion (core/stage1/linear_prior.py),
its file, and its share of a fine-tuned subject's prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _stage1_helpers import speech_like, write_envelope_subject

from talkstudio.core.errors import CheckpointError
from talkstudio.core.landmarks import STAGE1_POINTS
from talkstudio.core.stage1.linear_prior import LINEAR_FILE, OUTPUTS, STRIDE, LinearPrior, design
from talkstudio.core.stage1.ppg import PPG_DIM, ppg_features
from talkstudio.core.timing import SAMPLES_PER_FRAME

P37 = list(STAGE1_POINTS)


def test_design_stacks_the_context_and_repeats_the_ends() -> None:
    p = np.arange(5 * PPG_DIM, dtype=np.float64).reshape(5, PPG_DIM)
    x = design(p, 2)
    assert x.shape == (5, 5 * PPG_DIM + 1)
    np.testing.assert_array_equal(x[:, -1], 1.0)
    np.testing.assert_array_equal(x[2, 2 * PPG_DIM : 3 * PPG_DIM], p[2])  # the frame itself
    np.testing.assert_array_equal(x[2, :PPG_DIM], p[0])  # two frames before
    np.testing.assert_array_equal(x[0, :PPG_DIM], p[0])  # before the start: the first frame
    np.testing.assert_array_equal(x[4, 4 * PPG_DIM : 5 * PPG_DIM], p[4])  # after the end


def _clip(seed: int, weights: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio and displacements that are ``weights`` applied to its posteriors."""
    audio, _ = speech_like(6.0, np.random.default_rng(seed))
    frames = len(audio) // SAMPLES_PER_FRAME
    x = design(ppg_features(audio, frames, 0.5, STRIDE), 2)
    return audio, (size * (x @ weights)).reshape(frames, 37, 3)


def test_fit_recovers_the_motion_of_a_linear_map_and_skips_untracked_frames() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(5 * PPG_DIM + 1, OUTPUTS))
    (a1, d1), (a2, d2) = _clip(1, weights, 1.0), _clip(2, weights, 3.0)  # two sizes of speaker
    tracked = np.ones(len(d1), bool)
    tracked[::3] = False
    spoilt = d1.copy()
    spoilt[~tracked] = 50.0  # garbage on the untracked frames
    lin = LinearPrior.fit(
        [(a1, spoilt, tracked), (a2, d2, np.ones(len(d2), bool))], context=2, ridge=1e-4
    )
    audio, truth = _clip(3, weights, 2.0)  # a clip it did not see
    pred = lin.displacements(audio, len(truth))
    assert pred.shape == truth.shape and pred.dtype == np.float32
    motion = lambda d: (d - d.mean(0)).ravel()  # noqa: E731
    assert np.corrcoef(motion(pred), motion(truth))[0, 1] > 0.95
    # each point moves as far as it does on average over the clips (sizes 1 and 3: 2)
    ratio = pred.reshape(len(pred), -1).std(0) / truth.reshape(len(truth), -1).std(0)
    assert 0.8 < np.median(ratio) < 1.25, np.median(ratio)


def test_the_file_round_trips_and_a_bad_one_says_what_to_do(tmp_path: Path) -> None:
    lin = LinearPrior(np.random.default_rng(0).normal(size=(5 * PPG_DIM + 1, OUTPUTS)).astype(np.float32), 0.7, 2)  # fmt: skip
    assert LinearPrior.load(tmp_path) is None  # none there: a prior from before
    lin.save(tmp_path)
    back = LinearPrior.load(tmp_path)
    assert back is not None and back.scale == pytest.approx(0.7) and back.context == 2
    np.testing.assert_array_equal(back.weights, lin.weights)
    from safetensors.torch import load_file, save_file

    older = {k: v for k, v in load_file(str(tmp_path / LINEAR_FILE)).items() if k != "stride"}
    save_file(older, str(tmp_path / "older.safetensors"))  # written before the stride was kept
    (tmp_path / "older").mkdir()
    (tmp_path / "older.safetensors").rename(tmp_path / "older" / LINEAR_FILE)
    old = LinearPrior.load(tmp_path / "older")
    assert old is not None and old.stride == 1  # those scored every 10-ms frame
    data = (tmp_path / LINEAR_FILE).read_bytes()
    (tmp_path / LINEAR_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"linear\.safetensors.*delete it"):
        LinearPrior.load(tmp_path)
    with pytest.raises(CheckpointError, match="build the prior again"):
        LinearPrior(np.zeros((10, OUTPUTS), np.float32), 0.5, 2)
    odd = {k: v for k, v in load_file(str(tmp_path / "older" / LINEAR_FILE)).items()}
    odd["stride"] = torch.tensor([3], dtype=torch.int64)  # no longer known when it is loaded
    save_file(odd, str(tmp_path / "older" / LINEAR_FILE))
    with pytest.raises(CheckpointError, match="stride is 3, not one of"):
        LinearPrior.load(tmp_path / "older")


def test_posteriors_at_a_stride_score_fewer_frames_alike() -> None:
    audio, _ = speech_like(4.0, np.random.default_rng(5))
    full = ppg_features(audio, None, 0.5)
    for stride in (2, 4):
        sparse = ppg_features(audio, None, 0.5, stride)
        assert sparse.shape == full.shape  # every video frame has a row
        np.testing.assert_allclose(sparse.sum(1), 1.0, atol=1e-5)
        assert np.mean(sparse.argmax(1) == full.argmax(1)) > 0.5
    with pytest.raises(ValueError, match="stride must be one of"):
        ppg_features(audio, None, 0.5, 3)


def test_mixing_two_tracks_keeps_the_models_place_and_size() -> None:
    from talkstudio.core.stage1.infer import mix_tracks, sized_like

    rng = np.random.default_rng(4)
    t = np.arange(80)[:, None, None]
    own = np.sin(t / 5.0) * rng.normal(size=(1, 37, 3)) + rng.normal(size=(1, 37, 3))
    a = np.cos(t / 7.0) * rng.normal(size=(1, 37, 3)) + 3.0
    b = 10 * np.sin(t / 3.0) * rng.normal(size=(1, 37, 3)) - 2.0
    np.testing.assert_allclose(mix_tracks(own, []), own, atol=1e-5)
    mixed = mix_tracks(own, [(a, 0.2), (b, 0.4)])
    np.testing.assert_allclose(mixed.mean(0), own.mean(0), atol=1e-4)
    size = np.linalg.norm(own - own.mean(0))
    assert np.linalg.norm(mixed - mixed.mean(0)) == pytest.approx(size, rel=1e-4)
    scaled = sized_like(b, own)
    assert np.linalg.norm(scaled - scaled.mean(0)) == pytest.approx(size, rel=1e-4)
    np.testing.assert_allclose(scaled.mean(0), b.mean(0), atol=1e-4)


def test_a_subject_fine_tuned_from_a_prior_with_a_linear_part_uses_it(tmp_path: Path) -> None:
    from test_stage1_prior import _envelope_prior

    from talkstudio.core.progress import run_job
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.infer import load_stage1, predict
    from talkstudio.core.stage1.prior import PriorError, SpeakerNorm, load_prior
    from talkstudio.core.stage1.train import train_stage1
    from talkstudio.core.subject import Subject

    prior = _envelope_prior(tmp_path)
    voices = []
    for seed in (21, 22):
        s = Subject.open(write_envelope_subject(tmp_path / f"v{seed}", 8.0, seed))
        lm = np.asarray(s.tracks.lm_world, np.float64)
        disp = SpeakerNorm.from_landmarks(lm).normalise(lm[:, P37])
        voices.append((s.load_audio(), disp, np.ones(len(lm), bool)))
    LinearPrior.fit(voices).save(prior)

    root = write_envelope_subject(tmp_path / "s", seconds=8.0)
    common = dict(steps=3, window=50, batch=2, cpu_threads=1, val_every=3)
    common |= dict(feature_dim=32, lm_ffn=64, dec_ffn=64)  # the small prior's architecture
    cfg = Stage1Config.from_preset("preview", prior_path=str(prior), linear_share=0.4, **common)
    run_job(train_stage1(root, cfg))
    folder = root / "models" / "stage1"
    assert (folder / LINEAR_FILE).is_file(), "the linear part goes beside the checkpoint"
    model = load_stage1(root)
    assert model.blend is not None and model.blend.linear is not None
    assert model.blend.linear_weight == pytest.approx(0.4)
    speech = Subject.open(root).load_audio()
    with_linear = predict(model, speech)
    model.blend.linear_weight = 0.0
    without = predict(model, speech)
    assert np.abs(with_linear - without).max() > 1e-4, "the linear share changes the track"

    # a subject trained from scratch afterwards drops the linear part of the earlier run
    run_job(train_stage1(root, cfg.replace(init="scratch"), resume=False))
    assert not (folder / LINEAR_FILE).exists()
    assert json.loads((folder / "config.json").read_text())["meta"]["init"] == "scratch"

    # a damaged linear part makes the prior unusable, named as such
    (prior / LINEAR_FILE).write_bytes(b"not weights")
    with pytest.raises(PriorError, match="linear part"):
        load_prior(prior)
