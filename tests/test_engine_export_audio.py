"""Exports keep the driving speech's own rate and channels, in step with the video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from talkstudio.core.media import load_audio_native, probe
from talkstudio.core.progress import run_job
from talkstudio.core.timing import FPS

RATE = 48_000
ONSET_S = 1.2
"""Where the driving clip's burst starts (left channel; the right one starts later)."""


def _onset(channel: np.ndarray, rate: int) -> float:
    """Seconds until ``channel`` [S] first exceeds a tenth of its peak."""
    loud = np.flatnonzero(np.abs(channel) > 0.1 * np.abs(channel).max())
    assert len(loud), "the exported audio is silent"
    return float(loud[0]) / rate


@pytest.fixture(scope="module")
def stereo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 48 kHz stereo: silence, then a 440 Hz burst on the left at 1.2 s and a 660 Hz
    burst on the right at 1.6 s."""
    t = np.arange(3 * RATE) / RATE
    left = np.where(t >= ONSET_S, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)
    right = np.where(t >= ONSET_S + 0.4, 0.5 * np.sin(2 * np.pi * 660 * t), 0.0)
    path = tmp_path_factory.mktemp("clip") / "stereo48k.wav"
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), RATE)
    return path


def test_export_of_a_48k_stereo_clip_keeps_its_audio(demo_subject, stereo_clip, tmp_path):
    from talkstudio.core.engine import Engine

    engine = Engine.open(demo_subject, device="cpu")
    engine.drive(stereo_clip)
    start, end = 20, 50  # from 0.8 s to 2.0 s of the clip
    out = run_job(engine.export(tmp_path / "out.mp4", size=64, start=start, end=end))

    info = probe(out)
    assert (info.audio_codec, info.audio_sample_rate, info.audio_channels) == ("aac", RATE, 2)
    audio, rate = load_audio_native(out)  # [2, S]
    assert rate == RATE and audio.shape[0] == 2
    assert audio.shape[1] == pytest.approx((end - start) / FPS * RATE, abs=RATE / FPS)
    # A/V offset: the burst sounds where its frame is shown (within one frame), per channel,
    # and the channels stay apart (the right one is silent when the left one starts).
    frame_s = 1 / FPS
    assert _onset(audio[0], rate) == pytest.approx(ONSET_S - start / FPS, abs=frame_s)
    assert _onset(audio[1], rate) == pytest.approx(ONSET_S + 0.4 - start / FPS, abs=frame_s)
    left_start = round((ONSET_S - start / FPS + frame_s) * rate)
    assert np.abs(audio[1, left_start : left_start + rate // 10]).max() < 0.02
    # The video covers the same span from time 0.
    assert info.fps == pytest.approx(FPS)
    assert info.duration_s == pytest.approx((end - start) / FPS, abs=2 * frame_s)


def test_replay_exports_the_subjects_own_16k_audio(demo_subject, tmp_path) -> None:
    from talkstudio.core.engine import Engine

    engine = Engine.open(demo_subject, device="cpu")
    assert engine.audio_source is None
    out = run_job(engine.export(tmp_path / "own.mp4", size=64, start=0, end=10))
    info = probe(out)
    assert (info.audio_sample_rate, info.audio_channels) == (16_000, 1)
