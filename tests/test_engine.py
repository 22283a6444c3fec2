"""The engine's mechanics on the built-in demo subject, rendered at 64²: driving, rendering, fast
edits, export (frame count, sound, cancel, bad audio) and the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import render_command

from talkstudio.core import media
from talkstudio.core.errors import MediaError
from talkstudio.core.progress import run_job
from talkstudio.core.timing import num_frames


@pytest.fixture
def engine(demo_subject: Path):
    from talkstudio.core.engine import Engine

    return Engine.open(demo_subject, device="cpu")


def _speech(path: Path, seconds: float, rate: int = 22050) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2 * t) > 0)), rate)
    return path


def test_drive_and_render(engine, tmp_path: Path) -> None:
    track = engine.drive(_speech(tmp_path / "a.wav", 1.37))
    assert track.num_frames == num_frames(round(1.37 * 16000)) == engine.num_frames
    full = engine.render(5, (1, 1, 1), 64)
    assert full.rgb.shape == (64, 64, 3) and full.kind == "full"
    again = engine.render(5, (1, 1, 1), 64)
    assert again.kind == "cached"
    np.testing.assert_array_equal(again.rgb, full.rgb)
    # an edit equal to the cached frame's α changes nothing in the fast path
    same = engine.render_fast(5, (1, 1, 1), 64)
    assert same.kind == "fast"
    np.testing.assert_array_equal(same.rgb, full.rgb)
    edited = engine.landmarks(5, (1, 1, 2))
    assert not np.allclose(edited, engine.landmarks(5))
    with pytest.raises(Exception, match="between 0 and 2"):
        engine.render(5, (1, 1, 3), 64)


def test_export_frames_sound_and_sync(engine, tmp_path: Path) -> None:
    from talkstudio.core.edit import Edits

    engine.drive(_speech(tmp_path / "a.wav", 1.01, rate=48000))
    samples = len(engine.audio)
    out = run_job(engine.export(tmp_path / "out.mp4", Edits.constant(mouth=2.0), size=64))
    info = media.probe(out)
    assert info.has_audio and info.has_video
    frames = media.read_video_frames(out)
    assert len(frames) == num_frames(samples) == 26
    audio = media.load_audio(out)
    assert abs(len(audio) / 16000 - len(frames) / 25) <= 1 / 25


def test_cancelled_export_leaves_nothing(engine, tmp_path: Path) -> None:
    engine.drive(_speech(tmp_path / "a.wav", 1.0))
    job = engine.export(tmp_path / "cancel.mp4", size=64)
    next(job)
    next(job)
    job.close()
    assert list(tmp_path.glob("cancel*")) == [] and not any(
        ".part" in p.name for p in tmp_path.iterdir()
    )


def test_corrupt_audio_message_and_no_file(engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    with pytest.raises(MediaError):
        engine.drive(bad)
    res = subprocess.run(
        render_command(engine.subject.root, bad, tmp_path / "x.mp4"), capture_output=True, text=True
    )
    assert (
        res.returncode == 1 and "talkstudio render:" in res.stderr and "Traceback" not in res.stderr
    )
    assert not (tmp_path / "x.mp4").exists()


def test_cli_render_with_edit(demo_subject: Path, tmp_path: Path) -> None:
    audio = _speech(tmp_path / "d.wav", 0.6)
    out = tmp_path / "cli.mp4"
    res = subprocess.run(
        render_command(demo_subject, audio, out, "--alpha-mouth", "2.0"),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert len(media.read_video_frames(out)) == num_frames(round(0.6 * 16000))
