"""load_audio_native: the source's own rate and channels, on the same clock as load_audio."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from talkstudio.core.errors import MediaError
from talkstudio.core.media import load_audio, load_audio_native


def _burst(rate: int, channels: int, onset: float, seconds: float = 2.0) -> np.ndarray:
    """[S, C] float32: silence, then from ``onset`` a 440 Hz tone whose level differs per channel."""
    t = np.arange(round(seconds * rate)) / rate
    tone = np.where(t >= onset, np.sin(2 * np.pi * 440 * t), 0.0)
    return np.stack([tone * (0.6 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def _write_aac(path: Path, samples: np.ndarray, rate: int) -> None:
    """An audio-only M4A (AAC, with its encoder priming) of ``samples`` [S, C]."""
    layout = "mono" if samples.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format="mp4") as c:
        stream = c.add_stream("aac", rate=rate)
        stream.layout = layout
        planar = np.ascontiguousarray(samples.T)  # [C, S]
        for k in range(0, planar.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, k : k + 1024]), format="fltp", layout=layout
            )
            frame.sample_rate, frame.pts = rate, k
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)


def _onset(x: np.ndarray, rate: int) -> float:
    return float(np.flatnonzero(np.abs(x) > 0.1)[0]) / rate


def test_aac_48k_stereo_keeps_rate_channels_and_timing(tmp_path: Path) -> None:
    path = tmp_path / "speech.m4a"
    _write_aac(path, _burst(48_000, 2, onset=0.75), 48_000)
    audio, rate = load_audio_native(path)
    assert rate == 48_000 and audio.shape[0] == 2 and audio.dtype == np.float32
    assert audio.shape[1] == pytest.approx(2 * 48_000, abs=1024)
    # The channels stay apart (levels 0.6 and 0.4) and start where the tone starts, like the
    # 16 kHz analysis copy does (one clock for both).
    assert np.abs(audio[0]).max() == pytest.approx(0.6, abs=0.05)
    assert np.abs(audio[1]).max() == pytest.approx(0.4, abs=0.05)
    assert _onset(audio[0], rate) == pytest.approx(0.75, abs=0.005)
    assert _onset(load_audio(path), 16_000) == pytest.approx(_onset(audio[0], rate), abs=0.005)


def test_more_than_two_channels_become_mono(tmp_path: Path) -> None:
    path = tmp_path / "four.wav"
    sf.write(path, _burst(22_050, 4, onset=0.5), 22_050)
    audio, rate = load_audio_native(path)
    assert rate == 22_050 and audio.shape == (1, 2 * 22_050)
    assert np.abs(audio).max() == pytest.approx((0.6 + 0.4 + 0.2 + 0.0) / 4, abs=0.01)


def test_a_file_without_audio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                c.mux(packet)
        for packet in vs.encode(None):
            c.mux(packet)
    with pytest.raises(MediaError, match="has no audio track"):
        load_audio_native(path)
