"""Paste-back export: the crop transform, the blend, random access to source frames, subject
format 2 and the migration of format 1, and the export in the source video's framing (CLI
sizes, notices, parallel equal to serial). Small synthetic inputs; the trained model is the
demo subject's, given a made-up source video (its frames placed in a checkerboard frame)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from _video_subject import (
    CROP,
    FRAMES,
    SOURCE_H,
    SOURCE_W,
    as_video_subject,
    checkerboard,
)

from talkstudio.core.driving import pingpong_indices
from talkstudio.core.framing import choose_framing, video_identity
from talkstudio.core.media import Mp4Writer, iter_video_frames
from talkstudio.core.media.frame_reader import FrameReader
from talkstudio.core.paste_back import (
    FEATHER,
    GROW,
    apply_affine,
    blend_weights,
    crop_affine,
    invert_affine,
    paste,
    scale_affine,
)
from talkstudio.core.preprocess.crop import Crop
from talkstudio.core.subject import FORMAT_VERSION, Subject
from talkstudio.core.timing import SAMPLES_PER_FRAME

RENDER = 64


def centroid(img: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of a grey image in pixel coordinates (centres at +0.5)."""
    g = img.astype(np.float64)
    yy, xx = np.mgrid[: g.shape[0], : g.shape[1]] + 0.5
    return np.array([(g * xx).sum(), (g * yy).sum()]) / g.sum()


# -- geometry ------------------------------------------------------------------------------------
def test_crop_transform_round_trips_points() -> None:
    rng = np.random.default_rng(0)
    affine = crop_affine(-13, 27, 301, 512)
    pts = rng.uniform(-50, 1300, (100, 2))
    back = apply_affine(invert_affine(affine), apply_affine(affine, pts))
    assert np.abs(back - pts).max() < 0.5
    # the crop's corners land on the square's corners, and the mesh mapping agrees
    corners = apply_affine(affine, np.array([[-13, 27], [288, 328]]))
    np.testing.assert_allclose(corners, [[0, 0], [512, 512]], atol=1e-9)
    mesh = np.concatenate([pts, np.ones((100, 1))], axis=1)
    np.testing.assert_allclose(
        Crop(-13, 27, 301, 512).points(mesh)[:, :2], apply_affine(affine, pts), atol=1e-9
    )


@pytest.mark.parametrize(
    ("crop", "spot"),
    [(Crop(37, 21, 90, 128), (80.3, 64.8)), (Crop(-9, 40, 70, 64), (27.6, 74.2))],
)
def test_a_point_goes_into_the_crop_and_back_within_half_a_pixel(
    crop: Crop, spot: tuple[float, float]
) -> None:
    """A blob at a sub-pixel place in the source: cropped (Crop.apply), it lies where the
    transform says; pasted back with the transform, it returns to where it was."""
    h, w = 150, 200
    yy, xx = np.mgrid[:h, :w] + 0.5
    blob = np.exp(-((xx - spot[0]) ** 2 + (yy - spot[1]) ** 2) / (2 * 4.0**2))
    # (the blob is well inside the crop: a centroid near its edge would be cut short)
    source = np.repeat((blob * 250).round().astype(np.uint8)[..., None], 3, axis=2)
    affine = crop_affine(crop.x0, crop.y0, crop.side, crop.size)
    cropped = crop.apply(source)
    assert np.abs(centroid(cropped[..., 0]) - apply_affine(affine, spot)).max() < 0.5
    ones = np.ones((crop.size, crop.size), np.float32)
    back = paste(np.zeros_like(source), cropped, ones, affine)
    assert np.abs(centroid(back[..., 0]) - spot).max() < 0.5
    # a render at another size uses the scaled transform and lands in the same place
    half = cv2.resize(cropped, (crop.size // 2,) * 2, interpolation=cv2.INTER_AREA)
    back = paste(np.zeros_like(source), half, ones[::2, ::2], scale_affine(affine, 0.5))
    assert np.abs(centroid(back[..., 0]) - spot).max() < 0.5


# -- blend ---------------------------------------------------------------------------------------
def disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] + 0.5
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2).astype(np.float32)


@pytest.mark.parametrize("side", [64, 96])
def test_blend_keeps_the_source_outside_and_the_render_inside(side: int) -> None:
    source = checkerboard(120, 160)
    render = np.full((RENDER, RENDER, 3), (200, 40, 90), np.uint8)
    opacity = disc(RENDER, 30, 28, 10)
    source_head = disc(RENDER, 40, 40, 6) > 0  # the source's own head reaches further
    weights = blend_weights(opacity, source_head)
    assert weights[opacity > 0].min() == 1.0 and weights[source_head].min() == 1.0
    assert weights[0].max() == 0 and weights[:, -1].max() == 0  # zero at the crop's border
    assert ((weights > 0) & (weights < 1)).any()  # a feather, not a cut
    affine = crop_affine(40, 20, side, RENDER)
    out = paste(source, render, weights, affine)
    # the weight carried into the source: a white render pasted on black
    white = np.full_like(render, 255)
    carried = paste(np.zeros_like(source), white, weights, affine)[..., 0]
    outside, head = carried == 0, carried == 255
    assert outside.mean() > 0.5 and head.sum() > 100
    np.testing.assert_array_equal(out[outside], source[outside])  # the checkerboard, exactly
    assert np.abs(out[head].astype(int) - render[0, 0]).max() <= 1  # the render
    x0, y0 = 40, 20
    assert (carried[y0 : y0 + side, x0 : x0 + side] > 0).mean() < 0.8  # only around the head


def test_the_weight_is_the_rendered_matte_joined_with_the_covered_source_head() -> None:
    r = 256
    yy, xx = np.mgrid[:r, :r] + 0.5
    soft = np.clip(60 - np.hypot(xx - 100, yy - 110), 0, 4) / 4  # a rendered head, 4-px edge
    source_head = np.hypot(xx - 150, yy - 130) < 40
    weights = blend_weights(soft, source_head)
    dist = cv2.distanceTransform((~source_head).astype(np.uint8), cv2.DIST_L2, 5)
    far = dist > (GROW + FEATHER) * r + 1
    # away from the source head the weight is the rendered opacity itself: the real neck and
    # background show right up to the rendered head's edge, through its own soft edge
    np.testing.assert_allclose(weights[far], soft[far], atol=1e-6)
    assert ((weights[far] > 0) & (weights[far] < 1)).any()
    # the source head is covered, and a little beyond it, fading smoothly
    assert weights[dist <= GROW * r].min() == 1.0
    cover = weights.copy()
    cover[soft > 0] = np.nan  # where only the cover speaks
    step = np.nanmax(np.abs(np.diff(cover, axis=1)))
    assert 0 < step <= 1.5 / (FEATHER * r)  # a smoothstep over the feather's width
    # tapered at the crop's border
    assert weights[0].max() == 0 and weights[:, -1].max() == 0


def test_no_head_leaves_the_source_frame_as_it_is() -> None:
    source = checkerboard(48, 64)
    weights = blend_weights(np.zeros((32, 32), np.uint8))
    out = paste(source, np.zeros((32, 32, 3), np.uint8), weights, crop_affine(8, 4, 32, 32))
    np.testing.assert_array_equal(out, source)


# -- source frames on demand ---------------------------------------------------------------------
def write_numbered_video(path: Path, frames: int, fps: int = 30, gop: int = 6) -> None:
    """A small H.264 video whose frame k shows a bar k * 2 pixels long (key frame every ``gop``)."""
    with av.open(str(path), "w") as c:
        stream = c.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"bf": "2"}
        for k in range(frames):
            img = checkerboard(48, 64)
            img[:6, : 2 * (k + 1)] = (255, 0, 0)
            c.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(stream.encode())


def test_frame_reader_gives_the_decoder_frames_in_any_order(tmp_path: Path) -> None:
    video = tmp_path / "numbered.mp4"
    write_numbered_video(video, 45)
    expected = [f.rgb for f in iter_video_frames(video)]
    assert len(expected) == 38  # 1.5 s at 25 fps
    order = [*pingpong_indices(80, len(expected)), 3, 30, 30, 0, 37]
    with FrameReader(video, cache_bytes=8 * 64 * 48 * 3) as reader:  # an 8-frame cache
        for i in order:
            np.testing.assert_array_equal(reader[i], expected[i], err_msg=f"frame {i}")
        np.testing.assert_array_equal(reader[60], expected[-1])  # past the end: the last frame


# -- subject format ------------------------------------------------------------------------------
def test_a_version_1_subject_is_migrated_in_memory_only(tiny_subject: Path) -> None:
    as_video_subject(tiny_subject, None, version=1, crop=(40, 10, 64))
    before = (tiny_subject / "subject.json").read_bytes()
    meta = Subject.open(tiny_subject).meta
    assert meta.version == FORMAT_VERSION == 2
    assert meta.source["migrated_from_version"] == 1
    np.testing.assert_allclose(meta.source["crop_affine"], crop_affine(40, 10, 64, 32))
    assert (tiny_subject / "subject.json").read_bytes() == before
    framing = choose_framing(meta, "source")
    assert framing.kind == "crop" and framing.size(32) == (32, 32)
    assert framing.notice is not None and "missing" in framing.notice
    assert choose_framing(meta).kind == "crop"  # the default falls back the same way


def test_the_source_is_used_only_when_it_is_the_same_video(tiny_subject: Path) -> None:
    video = tiny_subject.parent / "src.mp4"
    with Mp4Writer(video, SOURCE_W, SOURCE_H) as w:
        for _ in range(12):
            w.write(checkerboard(SOURCE_H, SOURCE_W))
    as_video_subject(tiny_subject, video, version=2, crop=(40, 10, 64))
    meta = Subject.open(tiny_subject).meta
    framing = choose_framing(meta)
    assert (framing.kind, framing.size(32), framing.notice) == ("source", (160, 120), None)
    assert choose_framing(meta, "crop").kind == "crop"
    meta.source.update(width=161, height=121)  # H.264 needs even sides: the last ones go
    assert choose_framing(meta).size(32) == (160, 120)
    # a format-1 subject matches its video by frame size and length, and says so
    as_video_subject(tiny_subject, video, version=1, crop=(40, 10, 64))
    framing = choose_framing(Subject.open(tiny_subject).meta)
    assert framing.kind == "source" and "older Talkstudio" in (framing.notice or "")
    # another file under the same name: the crop, and why
    as_video_subject(tiny_subject, video, version=2, crop=(40, 10, 64))
    with open(video, "r+b") as f:
        f.seek(video.stat().st_size // 2)
        f.write(b"\0\1\2\3")
    framing = choose_framing(Subject.open(tiny_subject).meta, "source")
    assert framing.kind == "crop" and "no longer the video" in (framing.notice or "")


def test_a_synthetic_subject_exports_its_crop(demo_subject: Path) -> None:
    meta = Subject.open(demo_subject).meta
    assert choose_framing(meta) == choose_framing(meta, "crop")
    assert choose_framing(meta).kind == "crop" and choose_framing(meta).notice is None
    asked = choose_framing(meta, "source")
    assert asked.kind == "crop" and "not made from a video" in (asked.notice or "")


def test_preprocessing_records_the_identity_and_the_transform(tmp_path: Path) -> None:
    from talkstudio.core.preprocess.writeout import source_description

    video = tmp_path / "v.mp4"
    video.write_bytes(os.urandom(9 * 1024 * 1024))
    source = source_description(video, 29.97, False, 1280, 720, Crop(500, 100, 400, 512))
    assert source["file_bytes"] == 9 * 1024 * 1024
    assert source["file_hash"] == video_identity(video)["file_hash"].lower()
    assert source["file_hash"].startswith("sha256:")
    corners = apply_affine(source["crop_affine"], np.array([[500, 100], [900, 500]]))
    np.testing.assert_allclose(corners, [[0, 0], [512, 512]])
    with open(video, "r+b") as f:  # the middle is not hashed; the ends are
        f.seek(9 * 1024 * 1024 - 10)
        f.write(b"0123456789")
    assert video_identity(video)["file_hash"] != source["file_hash"]


# -- export in the source framing ----------------------------------------------------------------
@pytest.fixture(scope="module")
def speech(video_subject: Path) -> Path:
    import soundfile as sf

    audio = Subject.open(video_subject).load_audio()[: FRAMES * SAMPLES_PER_FRAME]
    path = video_subject.parent / "speech.wav"
    sf.write(str(path), audio, 16000)
    return path


def decode(path: Path) -> tuple[np.ndarray, list[float], float]:
    """Frames [T, H, W, 3], the streams' start times (s) and the audio's duration (s)."""
    with av.open(str(path)) as c:
        starts = [float(s.start_time * s.time_base) for s in c.streams]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = c.streams.audio[0].sample_rate
    return frames, starts, samples / rate


def bar_length(frame: np.ndarray) -> int:
    """Length of the red bar in the top rows of a source-framed frame."""
    red = (frame[2:6, :, 0] > 180) & (frame[2:6, :, 1] < 90)
    return int(np.median(red.sum(axis=1)))


def run_render(subject: Path, audio: Path, out: Path, *options: str, capsys) -> str:
    from talkstudio.app import cli

    argv = ["render", "--subject", str(subject), "--audio", str(audio), "--out", str(out)]
    assert cli.main([*argv, "--size", str(RENDER), *options]) == 0
    return capsys.readouterr().err


def test_render_writes_the_source_frame_size_or_the_crop(
    video_subject: Path, speech: Path, tmp_path: Path, capsys
) -> None:
    err = run_render(video_subject, speech, tmp_path / "src.mp4", capsys=capsys)
    assert "note:" not in err  # the source framing is the default, and usable
    run_render(video_subject, speech, tmp_path / "crop.mp4", "--framing", "crop", capsys=capsys)
    src, starts, audio_s = decode(tmp_path / "src.mp4")
    assert src.shape == (FRAMES, SOURCE_H, SOURCE_W, 3)
    crop, crop_starts, crop_audio_s = decode(tmp_path / "crop.mp4")
    assert crop.shape == (FRAMES, RENDER, RENDER, 3)
    # both streams start at 0 and the sound is the crop export's (AAC rounds up to its frames)
    assert starts == crop_starts == [0.0, 0.0] and audio_s == crop_audio_s
    assert abs(audio_s - FRAMES / 25) < 0.07
    # frame i shows the source frame its pose comes from: 0..7, then back 6, 5, 4, 3
    refs = [bar_length(f) // 8 - 1 for f in src]
    assert refs == [0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4, 3]
    # the checkerboard outside the crop is the source's
    with FrameReader(Subject.open(video_subject).meta.source["path"]) as reader:
        first = reader[0]
    assert np.abs(src[0, 20:, :30].astype(int) - first[20:, :30]).mean() < 3
    # the pasted crop looks like the square render, resized to the crop's side
    x0, y0, side = CROP
    square = cv2.resize(crop[0], (side, side), interpolation=cv2.INTER_CUBIC)
    centre = (slice(y0 + 20, y0 + 60), slice(x0 + 30, x0 + 66))
    diff = np.abs(src[0][centre].astype(int) - square[20:60, 30:66]).mean()
    assert diff < 6, diff


def test_an_old_subject_without_its_video_renders_the_crop_with_a_notice(
    video_subject: Path, speech: Path, tmp_path: Path, capsys
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    for entry in video_subject.iterdir():
        os.symlink(entry, old / entry.name) if entry.is_dir() else shutil.copy(entry, old)
    as_video_subject(old, None, version=1)
    err = run_render(old, speech, tmp_path / "old.mp4", "--framing", "source", capsys=capsys)
    assert "note:" in err and "missing" in err and "square crop" in err
    assert decode(tmp_path / "old.mp4")[0].shape == (FRAMES, RENDER, RENDER, 3)


def driven_engine(subject: Path, speech: Path):
    """An engine on ``subject`` (CPU, one thread) driven by ``speech``."""
    import torch

    from talkstudio.core.engine import Engine

    torch.set_num_threads(1)
    engine = Engine.open(subject, device="cpu")
    engine.drive(speech)
    return engine


def test_parallel_export_equals_serial_in_the_source_framing(
    video_subject: Path, speech: Path, tmp_path: Path
) -> None:
    from talkstudio.core.progress import run_job

    engine = driven_engine(video_subject, speech)
    run_job(engine.export(tmp_path / "serial.mp4", size=RENDER, framing="source"))
    run_job(engine.export(tmp_path / "par.mp4", size=RENDER, framing="source", workers=2))
    serial, s_starts, s_audio = decode(tmp_path / "serial.mp4")
    par, p_starts, p_audio = decode(tmp_path / "par.mp4")
    assert serial.shape == (FRAMES, SOURCE_H, SOURCE_W, 3)
    np.testing.assert_array_equal(par, serial)
    assert (p_starts, p_audio) == (s_starts, s_audio)


def test_the_preview_in_the_source_view_is_the_exported_frame(
    video_subject: Path, speech: Path, tmp_path: Path
) -> None:
    from talkstudio.core.progress import run_job

    engine = driven_engine(video_subject, speech)
    run_job(engine.export(tmp_path / "src.mp4", size=RENDER, framing="source"))
    exported = decode(tmp_path / "src.mp4")[0]
    x0, y0, side = CROP
    for i in (0, 9):  # frame 9 borrows source frame 5
        square = engine.render(i, (1, 1, 1), RENDER).rgb
        assert square.shape == (RENDER, RENDER, 3)
        shown = engine.render(i, (1, 1, 1), RENDER, "source").rgb
        assert shown.shape == (SOURCE_H, SOURCE_W, 3)  # 2 x 64 rows would exceed the source's
        assert bar_length(shown) // 8 - 1 == (0, 5)[i == 9]
        assert np.abs(shown.astype(int) - exported[i]).mean() < 2.5  # H.264 apart
        once = engine.render_once(i, (1, 1, 1), RENDER, "source").rgb
        assert np.abs(once.astype(int) - shown).max() <= 1
    # an edit previewed fast in the source view changes the face, not the source around it
    engine.render(3, (1, 1, 1), RENDER, "source")
    before = engine.render(3, (1, 1, 1), RENDER, "source").rgb.astype(int)
    fast = engine.render_fast(3, (0, 0, 2), RENDER, "source")  # eyes shut, mouth wide
    assert fast.kind == "fast" and fast.rgb.shape == before.shape
    change = np.abs(fast.rgb.astype(int) - before).sum(axis=2)
    inside = np.zeros(change.shape, bool)
    inside[y0 : y0 + side, x0 : x0 + side] = True
    assert change[inside].max() > 20, change.max()
    assert change[~inside].max() == 0
    # a smaller render is shown at twice its side in rows
    assert engine.render(0, (1, 1, 1), 32, "source").rgb.shape == (64, 86, 3)
    engine.close()


def test_scaled_size_keeps_the_aspect_with_even_sides() -> None:
    from talkstudio.core.errors import TalkstudioError
    from talkstudio.core.framing import scaled_size

    assert scaled_size(1280, 720, None) == (1280, 720)
    assert scaled_size(1280, 720, 480) == (854, 480)
    assert scaled_size(161, 121, 61) == (82, 62)  # odd rows rounded up to even
    with pytest.raises(TalkstudioError, match="16 pixels or more"):
        scaled_size(1280, 720, 8)


def test_a_source_framed_export_at_a_chosen_height(
    video_subject: Path, speech: Path, tmp_path: Path, capsys
) -> None:
    import torch

    from talkstudio.core.engine import Engine
    from talkstudio.core.progress import run_job

    torch.set_num_threads(1)
    engine = Engine.open(video_subject, device="cpu")
    engine.drive(speech)
    run_job(engine.export(tmp_path / "full.mp4", size=RENDER, framing="source", end=4))
    run_job(engine.export(tmp_path / "half.mp4", size=RENDER, framing="source", end=4, height=60))
    full, _, _ = decode(tmp_path / "full.mp4")
    half, _, audio = decode(tmp_path / "half.mp4")
    assert full.shape == (4, SOURCE_H, SOURCE_W, 3) and half.shape == (4, 60, 80, 3)
    assert audio == pytest.approx(4 / 25, abs=1 / 25)  # the sound comes along
    small = np.stack([cv2.resize(f, (80, 60), interpolation=cv2.INTER_AREA) for f in full])
    assert np.abs(small.astype(int) - half).mean() < 6  # the same picture, smaller
    # the crop's size is its Size: a height asked for a crop export changes nothing
    run_job(engine.export(tmp_path / "crop.mp4", size=RENDER, framing="crop", end=2, height=60))
    assert decode(tmp_path / "crop.mp4")[0].shape == (2, RENDER, RENDER, 3)
    # on the command line: render --height
    run_render(video_subject, speech, tmp_path / "cli.mp4", "--height", "60", capsys=capsys)
    assert decode(tmp_path / "cli.mp4")[0].shape == (FRAMES, 60, 80, 3)
