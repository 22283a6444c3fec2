"""The subject folder: round trip, validation, version refusal, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkstudio.core import atomic, subject
from talkstudio.core.errors import SubjectError


def test_round_trip(tiny_subject: Path) -> None:
    assert subject.validate_subject(tiny_subject) == []
    s = subject.Subject.open(tiny_subject)
    assert s.meta.num_frames == 12 and s.meta.size == 32
    assert s.meta.train_frames == 10  # last 10 % (ceil(1.2) = 2 frames) validate
    assert list(s.meta.val_range) == [10, 11]
    frame = s.load_frame(3)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    # PNG frames are lossless: write and read back exactly.
    pattern = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    s.write_frame(3, pattern)
    np.testing.assert_array_equal(s.load_frame(3), pattern)
    assert s.load_mask(0)[0, 0] == subject.MASK_PERSON | subject.MASK_HEAD
    audio = s.load_audio()
    assert audio.dtype == np.float32 and len(audio) == 12 * 640
    reopened = subject.Subject.open(tiny_subject)
    np.testing.assert_array_equal(reopened.tracks.pose, s.tracks.pose)
    np.testing.assert_allclose(reopened.meta.K, s.meta.K)


def test_missing_frame_is_reported(tiny_subject: Path) -> None:
    (tiny_subject / "masks" / "000005.png").unlink()
    problems = subject.validate_subject(tiny_subject)
    assert any("mask" in p and "000005" in p for p in problems), problems
    with pytest.raises(SubjectError, match="000005"):
        subject.Subject.open(tiny_subject)


def test_wrong_shape_is_reported(tiny_subject: Path) -> None:
    s = subject.Subject.open(tiny_subject)
    tracks = s.tracks
    tracks.lm_world = tracks.lm_world[:, :60]
    s.write_tracks(tracks)
    problems = subject.validate_subject(tiny_subject)
    assert any("lm_world" in p and "(12, 68, 3)" in p for p in problems), problems


def test_nan_tracks_are_reported(tiny_subject: Path) -> None:
    s = subject.Subject.open(tiny_subject)
    tracks = s.tracks
    tracks.pose[4, 0, 3] = np.nan
    s.write_tracks(tracks)
    assert any("NaN" in p for p in subject.validate_subject(tiny_subject))


def test_newer_version_is_refused(tiny_subject: Path) -> None:
    path = tiny_subject / "subject.json"
    raw = json.loads(path.read_text())
    raw["version"] = subject.FORMAT_VERSION + 1
    path.write_text(json.dumps(raw))
    with pytest.raises(SubjectError, match="newer than this Talkstudio"):
        subject.Subject.open(tiny_subject)


def test_not_a_subject(tmp_path: Path) -> None:
    with pytest.raises(SubjectError, match="talkstudio preprocess"):
        subject.Subject.open(tmp_path)
    (tmp_path / "subject.json").write_text("{not json")
    with pytest.raises(SubjectError, match="not valid JSON"):
        subject.Subject.open(tmp_path)


def test_audio_length_mismatch_is_reported(tiny_subject: Path) -> None:
    s = subject.Subject.open(tiny_subject)
    s.write_audio(np.zeros(40 * 640, np.float32))
    assert any("covers 40 frames" in p for p in subject.validate_subject(tiny_subject))


def test_subject_without_audio(tmp_path: Path) -> None:
    from conftest import make_tiny_subject

    root = make_tiny_subject(tmp_path / "silent", audio=False)
    s = subject.Subject.open(root)
    with pytest.raises(SubjectError, match="no audio track"):
        s.load_audio()


def test_incomplete_model_folder_is_reported(tiny_subject: Path) -> None:
    d = subject.Subject.open(tiny_subject).model_dir("head")
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"")
    assert any("needs both" in p for p in subject.validate_subject(tiny_subject))


def test_interrupted_write_keeps_previous_file(tiny_subject: Path) -> None:
    path = tiny_subject / "tracks.npz"
    before = path.read_bytes()

    class BoomError(RuntimeError):
        pass

    with pytest.raises(BoomError), atomic.atomic_open(path) as fh:
        fh.write(b"half of a new file")
        raise BoomError
    assert path.read_bytes() == before
    assert [p.name for p in tiny_subject.iterdir() if ".part" in p.name] == []
    # The same through the subject API: an unencodable array aborts before the rename.
    s = subject.Subject.open(tiny_subject)
    bad = s.tracks
    bad.pose = np.array([object()] * 12)
    with pytest.raises(TypeError):
        s.write_tracks(bad)
    assert path.read_bytes() == before


def test_nothing_is_unpickled(tiny_subject: Path) -> None:
    path = tiny_subject / "tracks.npz"
    arrays = dict(np.load(path))
    arrays["lm2d"] = np.array([{"evil": 1}], dtype=object)
    np.savez(path, **arrays)
    problems = subject.validate_subject(tiny_subject)
    assert any("tracks.npz" in p for p in problems), problems


def test_atomic_writes_get_ordinary_permissions(tmp_path: Path) -> None:
    """New files get 0666 less the umask (not mkstemp's private 0600); a replaced file keeps
    its own mode."""
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    new = tmp_path / "new.json"
    atomic.write_json(new, {"a": 1})
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    os.chmod(new, 0o640)
    atomic.write_json(new, {"a": 2})
    assert new.stat().st_mode & 0o777 == 0o640
    assert json.loads(new.read_text())["a"] == 2
