"""Preprocessing of awkward and bad inputs: each gets a subject or a clear message.

Test videos are written with PyAV in temporary folders; the face videos reuse frames of the real
clip ``May_5s.mp4`` (skipped when ../shared/data is absent).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import shared_data

from talkstudio.core.errors import MediaError, SubjectError
from talkstudio.core.preprocess import PreprocessError, preprocess
from talkstudio.core.progress import run_job
from talkstudio.core.subject import Subject, validate_subject


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps: int = 25,
    audio: bool = True,
    faststart: bool = False,
) -> Path:
    """H.264 MP4 of RGB ``frames`` at ``fps``, with a 220 Hz tone as AAC audio when ``audio``."""
    h, w = frames[0].shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "18", "preset": "ultrafast"}
        if audio:
            rate = 16000
            aus = c.add_stream("aac", rate=rate)
            secs = len(frames) / fps
            tone = (0.2 * np.sin(2 * np.pi * 220 * np.arange(int(secs * rate)) / rate)).astype(
                np.float32
            )
            for k in range(0, len(tone), 1024):
                chunk = tone[k : k + 1024][None]
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate = rate
                af.pts = k
                af.time_base = Fraction(1, rate)
                for p in aus.encode(af):
                    c.mux(p)
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if audio:
            for p in aus.encode():
                c.mux(p)
    return path


@pytest.fixture(scope="module")
def may_frames() -> list[np.ndarray]:
    """The first 3 s of May_5s at 25 fps, RGB [512, 512, 3]."""
    from talkstudio.core.media import read_video_frames

    return list(read_video_frames(shared_data("May_5s.mp4"), max_frames=75))


def resample(frames: list[np.ndarray], fps: int, seconds: float) -> list[np.ndarray]:
    """``frames`` (25 fps) shown at ``fps`` for ``seconds``: frame i shows 25 fps frame i*25/fps."""
    return [frames[min(len(frames) - 1, int(i * 25 / fps))] for i in range(round(seconds * fps))]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        run_job(preprocess(tmp_path / "absent.mp4", tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def test_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a shopping list, not a video\n" * 50)
    with pytest.raises(MediaError, match="cannot be read"):
        run_job(preprocess(fake, tmp_path / "s"))


def test_audio_only_file_is_refused(tmp_path: Path) -> None:
    import soundfile as sf

    wav = tmp_path / "speech.wav"
    sf.write(str(wav), np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(PreprocessError, match="no video stream"):
        run_job(preprocess(wav, tmp_path / "s"))


def test_no_face(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (160, 160, 3), dtype=np.uint8) for _ in range(60)]
    video = write_video(tmp_path / "noise.mp4", noise)
    with pytest.raises(PreprocessError, match="no face was found in any of the 60 frames"):
        run_job(preprocess(video, tmp_path / "s", size=128))
    assert not any(p.name.startswith(".s.") for p in tmp_path.iterdir())


def test_too_short(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    clip = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(37)]  # 1.48 s
    video = write_video(tmp_path / "short.mp4", clip)
    with pytest.raises(PreprocessError, match=r"1\.\d+ s long; a subject needs at least 2 s"):
        run_job(preprocess(video, tmp_path / "s"))


def test_no_video_stream_is_one_error_everywhere(tmp_path: Path) -> None:
    """A sound file is refused with the same PreprocessError by the studio's video check, by
    preprocessing and by tracking alone."""
    import soundfile as sf

    from talkstudio.app.video_check import check_video_job
    from talkstudio.core.preprocess.tracks_only import track_video

    wav = tmp_path / "voice.wav"
    sf.write(wav, np.zeros(3 * 16000, np.float32), 16000)
    for refuse in (
        lambda: run_job(check_video_job(wav)),
        lambda: run_job(preprocess(wav, tmp_path / "s")),
        lambda: track_video(wav),
    ):
        with pytest.raises(
            PreprocessError, match=r"voice\.wav has no video stream; choose a video"
        ):
            refuse()


def test_bad_size_and_focal(tmp_path: Path) -> None:
    with pytest.raises(PreprocessError, match="--size"):
        run_job(preprocess(tmp_path / "x.mp4", tmp_path / "s", size=8))
    with pytest.raises(PreprocessError, match="--focal"):
        run_job(preprocess(tmp_path / "x.mp4", tmp_path / "s", focal=-3.0))


def test_out_is_not_clobbered(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(PreprocessError, match="not a subject folder"):
        run_job(preprocess(tmp_path / "x.mp4", out))
    assert (out / "holiday.jpg").is_file()


def test_two_faces_of_equal_size(tmp_path: Path, may_frames: list[np.ndarray]) -> None:
    pairs = [np.concatenate([f, f], axis=1) for f in may_frames[:60]]  # [512, 1024, 3]
    video = write_video(tmp_path / "twins.mp4", pairs)
    with pytest.raises(PreprocessError, match="two faces of about the same size"):
        run_job(preprocess(video, tmp_path / "s", size=128))


def test_smaller_second_face_is_ignored(tmp_path: Path, may_frames: list[np.ndarray]) -> None:
    """A small face beside the speaker: the speaker is followed and the other face reported."""
    frames = []
    for f in may_frames[:60]:
        small = cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA)
        side = np.zeros((512, 256, 3), np.uint8)
        side[128:384] = small
        frames.append(np.concatenate([f, side], axis=1))  # [512, 768, 3]
    video = write_video(tmp_path / "guest.mp4", frames, audio=False)
    out = run_job(preprocess(video, tmp_path / "s", size=128))
    subject = Subject.open(out)
    report = (out / "preprocess_report.json").read_text()
    assert "another, smaller face" in report
    crop = subject.meta.source["crop"]
    assert crop[0] < 100, f"the crop {crop} should sit on the large face at the left"


def test_no_audio_makes_a_subject(tmp_path: Path, may_frames: list[np.ndarray]) -> None:
    video = write_video(tmp_path / "silent.mp4", may_frames[:60], audio=False)
    records = []
    out = run_job(preprocess(video, tmp_path / "s", size=128), records.append)
    assert any("no audio track" in r.message for r in records)
    sheet = records[-1].preview  # the contact sheet comes with the last record
    assert sheet is not None and sheet.ndim == 3 and sheet.shape[2] == 3
    assert [r.stage for r in records][:2] == ["probe", "track"]
    assert validate_subject(out) == []
    subject = Subject.open(out)
    assert subject.meta.has_audio is False and not subject.audio_path.exists()
    with pytest.raises(SubjectError, match="no audio track"):
        subject.load_audio()


@pytest.mark.parametrize("fps", [30, 60])
def test_other_frame_rates_are_resampled(
    tmp_path: Path, may_frames: list[np.ndarray], fps: int
) -> None:
    video = write_video(tmp_path / f"clip{fps}.mp4", resample(may_frames, fps, 2.4), fps=fps)
    records = []
    out = run_job(preprocess(video, tmp_path / "s", size=128), records.append)
    subject = Subject.open(out)
    assert subject.meta.num_frames == 60  # 2.4 s at 25 fps
    assert subject.meta.source["fps"] == pytest.approx(fps, rel=1e-3)
    assert any(f"{fps} fps" in r.message and "resampled" in r.message for r in records)
    assert subject.tracks.tracked.all()
    audio = subject.load_audio()
    assert len(audio) == 60 * 640


def test_portrait_video(tmp_path: Path, may_frames: list[np.ndarray]) -> None:
    """A 360x640 portrait video: the square crop lies inside it and covers the face."""
    frames = []
    for f in may_frames[:60]:
        canvas = np.full((640, 360, 3), 90, np.uint8)
        canvas[60:360, 30:330] = cv2.resize(f, (300, 300), interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    video = write_video(tmp_path / "portrait.mp4", frames)
    out = run_job(preprocess(video, tmp_path / "s", size=256))
    subject = Subject.open(out)
    x0, y0, side = subject.meta.source["crop"]
    assert side <= 360 and x0 >= 0 and x0 + side <= 360 and y0 >= 0 and y0 + side <= 640
    assert subject.load_frame(0).shape == (256, 256, 3)
    lm = subject.tracks.lm2d  # [T, 68, 2] in the crop
    assert lm.min() > 0 and lm.max() < 256


def test_corrupt_part_way_names_the_time(tmp_path: Path, may_frames: list[np.ndarray]) -> None:
    video = write_video(tmp_path / "full.mp4", may_frames[:75], faststart=True)
    data = video.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(MediaError, match=r"at \d+\.\d+ s"):
        run_job(preprocess(broken, tmp_path / "s", size=128))
    assert not (tmp_path / "s").exists()
