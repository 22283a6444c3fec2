"""Region scores of a rendered frame (core/fidelity.py) on constructed images, and the new
columns of ``talkstudio eval`` on the built-in demo subject."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkstudio.core import fidelity
from talkstudio.core.subject import MASK_HEAD, Subject

S = 128


def _regions() -> fidelity.Regions:
    """A disc-shaped head in a 128² frame, with a 12-px seam band and a mouth box."""
    yy, xx = np.mgrid[:S, :S]
    r = np.hypot(yy - 64, xx - 64)
    head = r < 40
    seam = np.abs(r - 40) < 6
    mouth = np.zeros((S, S), bool)
    mouth[80:96, 52:76] = True
    return fidelity.Regions(head, mouth, seam, head & ~seam, (slice(24, 104), slice(24, 104)))


def _truth() -> np.ndarray:
    img = cv2.GaussianBlur(np.random.default_rng(5).random((S, S, 3)), (0, 0), 1.0)
    return (img - img.min()) / (img.max() - img.min())


def test_identical_frames_score_perfectly() -> None:
    truth = _truth()
    got = fidelity.score_frame(truth, truth, _regions())
    assert set(got) == set(fidelity.COLUMNS)
    assert got["psnr_head"] > 100 and got["psnr_full"] > 100
    assert got["ssim_head"] == pytest.approx(1.0)
    assert got["haarpsi_head"] == pytest.approx(1.0, abs=1e-5)
    assert got["mouth_sharpness"] == pytest.approx(1.0)
    assert np.isnan(got["seam_ratio"])  # no error anywhere: no ratio


def test_seam_ratio_sees_error_at_the_boundary() -> None:
    truth, regions = _truth(), _regions()
    noise = np.random.default_rng(1).normal(0, 0.05, truth.shape)
    even = np.clip(truth + noise, 0, 1)
    assert fidelity.score_frame(even, truth, regions)["seam_ratio"] == pytest.approx(1.0, abs=0.1)
    seam_only = truth.copy()
    seam_only[regions.seam] = np.clip(truth + 4 * noise, 0, 1)[regions.seam]
    seam_only[regions.inner] = even[regions.inner]
    assert fidelity.score_frame(seam_only, truth, regions)["seam_ratio"] > 3.0


def test_paste_seam_scores_the_blend_into_the_real_frame() -> None:
    truth, plain = _truth(), _regions()
    yy, xx = np.mgrid[:S, :S]
    dist = np.hypot(yy - 64, xx - 64)
    weight = np.clip((56 - dist) / 16, 0, 1).astype(np.float32)  # 1 to r 40, 0 from r 56
    band = np.abs(dist - 48) < 6
    regions = fidelity.Regions(*list(vars(plain).values())[:5], weight, band)
    assert np.isnan(fidelity.score_frame(truth, truth, plain)["paste_seam_ratio"])  # no weight
    noise = np.random.default_rng(2).normal(0, 0.05, truth.shape)
    even = np.clip(truth + noise, 0, 1)
    # an even error is halved where the render is half blended in
    got = fidelity.score_frame(even, truth, regions)["paste_seam_ratio"]
    assert got == pytest.approx(0.5, abs=0.1)
    # a render that goes wrong where it meets the real frame: a seam
    ring = np.clip(truth + 6 * noise, 0, 1)
    ring[dist < 40] = even[dist < 40]
    assert fidelity.score_frame(ring, truth, regions)["paste_seam_ratio"] > 1.5
    # with the rendered opacity, the weight is paste-back's own: the render is taken as far as
    # its head reaches, so a head that spills over its ring carries the ring's error in
    beyond = np.where((dist < 46)[..., None], even, np.clip(truth + 6 * noise, 0, 1))
    tight = fidelity.score_frame(beyond, truth, regions, opacity=(dist < 40).astype(np.float32))
    spill = fidelity.score_frame(beyond, truth, regions, opacity=(dist < 50).astype(np.float32))
    assert tight["paste_seam_ratio"] < 1.0 < 2.0 < spill["paste_seam_ratio"]


def test_blurred_mouth_scores_lower() -> None:
    truth, regions = _truth(), _regions()
    blurred = cv2.GaussianBlur(truth, (0, 0), 2.0)
    got = fidelity.score_frame(blurred, truth, regions)
    assert got["mouth_sharpness"] < 0.5
    assert got["haarpsi_head"] < 0.9 and got["ssim_head"] < 0.9
    assert got["psnr_head"] < 40


def test_regions_of_a_real_subject_frame(demo_subject: Path) -> None:
    subject = Subject.open(demo_subject)
    i = subject.meta.train_frames
    reg = fidelity.frame_regions(subject, i, 256)
    labels = subject.load_mask(i)
    if labels.shape != (256, 256):
        labels = cv2.resize(labels, (256, 256), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(reg.head, (labels & MASK_HEAD) > 0)
    assert reg.seam.any() and not (reg.seam & reg.inner).any()
    assert (reg.inner <= reg.head).all()
    # paste-back's weight: 1 over the head; its 0.5 line, where the band is, beyond the head
    assert reg.paste_weight is not None and reg.paste_seam is not None
    assert (reg.paste_weight[reg.head] == 1.0).all()
    assert reg.paste_seam.any() and not (reg.paste_seam & reg.inner).any()
    # the mouth box lies in the head's box, which holds the whole head
    ys, xs = np.nonzero(reg.mouth)
    box = reg.box
    assert box[0].start <= ys.min() and ys.max() < box[0].stop
    assert box[1].start <= xs.min() and xs.max() < box[1].stop
    assert reg.head[box].sum() == reg.head.sum()


def test_eval_prints_the_perceptual_and_sharpness_columns(
    demo_subject: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from talkstudio.app import cli

    out = tmp_path / "report.json"
    assert cli.main(["eval", str(demo_subject), "--frames", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("pass"))
    assert "HaarPSI" in header and "MS-GMSD" in header and "mouth sharp" in header
    report = json.loads(out.read_text())
    assert len(report["frames"]) == 2
    model, base = report["passes"]["stage2_alone"], report["baseline"]
    for scores in (model, base):
        assert 0 < scores["haarpsi"] <= 1 and scores["ms_gmsd"] >= 0
        assert scores["mouth_sharpness"] > 0
        row = f"{scores['haarpsi']:.3f}"
        assert row in printed
    assert model["haarpsi"] > base["haarpsi"]  # the trained head beats the mean frame


def test_evenly_spaced_frames_span_the_split() -> None:
    assert [100 + k for k in fidelity.evenly_spaced(154, 4)] == [100, 151, 202, 253]
    assert fidelity.evenly_spaced(3, 50) == [0, 1, 2]
    assert fidelity.evenly_spaced(3, None) == [0, 1, 2]
    picks = fidelity.evenly_spaced(154, 50)
    assert len(picks) == len(set(picks)) == 50 and picks == sorted(picks)
