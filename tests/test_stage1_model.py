"""Stage-1 network: KV cache vs reference, zero init, causality, bias, fusion, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from talkstudio.core.checkpoint import load_into, save_model
from talkstudio.core.errors import CheckpointError
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.stage1.decoder import (
    BiasedCrossAttention,
    PeriodicPositionalEncoding,
    distance_bias_table,
)
from talkstudio.core.stage1.features import AudioFrontEnd
from talkstudio.core.stage1.infer import generate, generate_uncached, load_stage1, predict
from talkstudio.core.stage1.model import Stage1Model

IN_DIM = 4 * 80 + 6


def make_model(seed: int = 0, live_head: bool = True, **overrides) -> Stage1Model:
    """A model with plausible statistics; ``live_head`` gives the zero-initialised output layer
    random weights so that predictions (and what is fed back) are not all zero."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Stage1Model(Stage1Config(dropout=0.0, **overrides), IN_DIM)
    model.set_statistics(
        mean_lm=rng.normal(0, 0.3, (37, 3)),
        lm_scale=np.array([1.6, 1.9, 0.9]),
        disp_std=np.array([0.01, 0.02, 0.005]),
        feat_mean=rng.normal(0, 1, IN_DIM),
        feat_std=rng.uniform(0.5, 2, IN_DIM),
    )
    if live_head:
        torch.nn.init.normal_(model.head.weight, std=0.3)
        torch.nn.init.normal_(model.head.bias, std=0.3)
    return model.eval()


@pytest.mark.parametrize("fusion", ["linear", "biased_cross_attention"])
def test_cached_inference_equals_the_uncached_reference(fusion: str) -> None:
    model = make_model(fusion=fusion, window=16)  # context 16 < 40 frames: the window slides
    feats = torch.randn(2, 40, IN_DIM)
    cached = generate(model, feats)
    reference = generate_uncached(model, feats)
    assert cached.shape == (2, 40, 37, 3)
    assert cached.std() > 1e-3  # the feedback carries real values
    torch.testing.assert_close(cached, reference, rtol=0, atol=1e-5)
    torch_loop = generate(model, feats, kernel="torch")
    torch.testing.assert_close(cached, torch_loop, rtol=0, atol=1e-5)
    assert torch.equal(cached, generate(model, feats, kernel="numpy"))  # the CPU default


def test_numpy_kernel_is_refused_where_it_cannot_run() -> None:
    model = make_model(window=16)
    feats = torch.randn(1, 5, IN_DIM)
    with pytest.raises(ValueError, match="cached loop on the CPU"):
        generate(model, feats, cached=False, kernel="numpy")
    with pytest.raises(ValueError, match="unknown stage-1 kernel"):
        generate(model, feats, kernel="fast")


def test_untrained_model_predicts_exactly_the_mean_landmarks() -> None:
    model = make_model(live_head=False)
    audio = 0.1 * np.random.default_rng(1).standard_normal(16000 + 5).astype(np.float32)
    points = predict(model, audio)
    assert points.shape == (26, 37, 3)
    mean = model.mean_lm.numpy()
    assert np.array_equal(points, np.broadcast_to(mean, points.shape))


def test_causal_mask_keeps_the_future_out_teacher_forced() -> None:
    model = make_model()
    feats, prev = torch.randn(1, 30, IN_DIM), 0.01 * torch.randn(1, 30, 37, 3)
    k = 12
    reach = model.audio_encoder.reach
    feats2, prev2 = feats.clone(), prev.clone()
    feats2[:, k + 1 + reach :] = torch.randn_like(feats2[:, k + 1 + reach :])
    prev2[:, k + 1 :] = 0.01 * torch.randn_like(prev2[:, k + 1 :])
    with torch.no_grad():
        a, b = model(feats, prev), model(feats2, prev2)
    torch.testing.assert_close(a[:, : k + 1], b[:, : k + 1], rtol=0, atol=1e-6)
    assert (a[:, k + 1 :] - b[:, k + 1 :]).abs().amax() > 1e-3


def test_free_running_output_ignores_later_audio() -> None:
    # the clip-wide steps (loudness, the smoothing's motion size) off: the network alone
    model = make_model(normalize_loudness=False, smooth_frames=0.0)
    rng = np.random.default_rng(2)
    audio = (0.1 * rng.standard_normal(40 * 640)).astype(np.float32)
    k = 15
    # Frame k's features read audio frames k ± reach, whose mel windows reach 120 samples further.
    cut = (k + 1 + model.audio_encoder.reach) * 640 + 120
    changed = audio.copy()
    changed[cut:] = (0.3 * rng.standard_normal(len(audio) - cut)).astype(np.float32)
    a, b = predict(model, audio), predict(model, changed)
    np.testing.assert_allclose(a[: k + 1], b[: k + 1], rtol=0, atol=1e-6)
    assert np.abs(a[k + 1 :] - b[k + 1 :]).max() > 1e-3


def test_distance_bias_of_each_head() -> None:
    table = distance_bias_table(heads=4, period=25, context=200)
    slopes = torch.tensor([2**-2, 2**-4, 2**-6, 2**-8])
    for d in (0, 1, 24, 25, 49, 50, 199):
        torch.testing.assert_close(table[:, d], -(d // 25) * slopes)
    model = make_model(window=30)
    attn = model.decoder.decoder_layers()[0].self_attn
    bias = attn.bias(torch.arange(40), torch.arange(40))  # [H, 40, 40]
    assert torch.isinf(bias[:, 5, 6]).all() and torch.isinf(bias[:, 35, 5]).all()  # future, stale
    torch.testing.assert_close(bias[:, 35, 6], -slopes)  # 29 frames back: one period


def test_periodic_position_encoding_repeats_every_period() -> None:
    ppe = PeriodicPositionalEncoding(64, 25, 0.0)
    codes = ppe(torch.zeros(1, 60, 64))[0]
    torch.testing.assert_close(codes[3], codes[28])
    torch.testing.assert_close(codes[10], codes[35])
    assert (codes[3] - codes[4]).abs().max() > 0.1
    torch.testing.assert_close(ppe(torch.zeros(1, 1, 64), offset=53)[0, 0], codes[3])


def test_alignment_mask_reduces_cross_attention_to_a_linear_map() -> None:
    """The paper's argument for linear fusion: with the alignment bias, frame i's output is the
    projected value of audio frame i alone, whatever the query."""
    torch.manual_seed(0)
    ca = BiasedCrossAttention(64, 4, 0.0).eval()
    audio = torch.randn(1, 20, 64)
    state = ca.prepare(audio)
    out1, out2 = ca(torch.randn(1, 20, 64), state), ca(torch.randn(1, 20, 64), state)
    torch.testing.assert_close(out1, out2)
    v = ca.kv(audio)[..., 64:]
    torch.testing.assert_close(out1, ca.out(v), rtol=1e-5, atol=1e-5)


def test_checkpoint_round_trip_and_another_config(tmp_path: Path) -> None:
    model = make_model()
    folder = tmp_path / "stage1"
    meta = {"audio_in_dim": IN_DIM}
    save_model(folder, "stage1", model.state_dict(), model.config.to_dict(), meta)
    loaded = load_stage1(folder)
    audio = 0.1 * np.random.default_rng(3).standard_normal(8000).astype(np.float32)
    np.testing.assert_array_equal(predict(loaded, audio), predict(model, audio))

    other = Stage1Model(Stage1Config(fusion="biased_cross_attention"), IN_DIM)
    with pytest.raises(CheckpointError, match=r"another configuration.*fusion"):
        load_into(other, loaded.state_dict(), str(folder))
    wider = Stage1Model(Stage1Config(dec_ffn=256), IN_DIM)
    with pytest.raises(CheckpointError, match=r"shape: decoder\.layers\.0\.ffn"):
        load_into(wider, loaded.state_dict(), str(folder))


def test_short_and_silent_audio() -> None:
    model = make_model()
    one = predict(model, np.full(100, 0.05, np.float32))  # shorter than one frame
    assert one.shape == (1, 37, 3) and np.all(np.isfinite(one))
    silent = predict(model, np.zeros(16000, np.float32))
    assert silent.shape == (25, 37, 3) and np.all(np.isfinite(silent))
    assert AudioFrontEnd(model.config)(np.zeros(10, np.float32)).shape == (1, IN_DIM)


def test_smoothing_removes_jitter_and_keeps_the_motion() -> None:
    from talkstudio.core.stage1.infer import smooth_track

    rng = np.random.default_rng(0)
    t = np.arange(200)
    slow = np.sin(2 * np.pi * t / 50)[:, None, None] * np.ones((1, 37, 3))
    track = (slow + 0.3 * rng.standard_normal((200, 37, 3))).astype(np.float32)
    out = smooth_track(track, 1.5)
    assert out.shape == track.shape and out.dtype == np.float32
    jitter = lambda x: float(np.abs(np.diff(x, axis=0)).mean())  # noqa: E731
    assert jitter(out) < 0.5 * jitter(track)
    dev = lambda x: float(np.linalg.norm(x - x.mean(0)))  # noqa: E731
    assert dev(out) == pytest.approx(dev(track), rel=1e-4)  # the motion keeps its size
    # closer to the slow motion than the noisy track was
    assert np.abs(out - slow).mean() < np.abs(track - slow).mean()
    assert np.array_equal(smooth_track(track, 0.0), track)
    still = np.ones((10, 37, 3), np.float32)
    assert np.array_equal(smooth_track(still, 1.5), still)  # nothing moves: nothing changes


def test_predict_smooths_as_configured() -> None:
    audio = 0.1 * np.random.default_rng(2).standard_normal(3 * 16000).astype(np.float32)
    model = make_model(smooth_frames=0.0)
    raw = predict(model, audio)
    model.config.smooth_frames = 2.0
    smooth = predict(model, audio)
    assert raw.shape == smooth.shape
    assert np.abs(np.diff(smooth, axis=0)).mean() < np.abs(np.diff(raw, axis=0)).mean()
