"""core.media: round trips, timestamp resampling, audio formats/rates, errors, atomic writes.

Every source file is made here with PyAV or soundfile (64×64 frames, a couple of seconds), except
the one test on the real ``May_5s.mp4``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from conftest import shared_data

from talkstudio.core.errors import MediaError
from talkstudio.core.media import (
    Mp4Writer,
    encode_mp4,
    iter_video_frames,
    load_audio,
    probe,
    read_video_frames,
)

SIZE = 64
SR = 16000


# ----------------------------------------------------------------------------- helpers
def code_frame(j: int, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """A flat frame whose colour encodes the number ``j`` (0..255): uint8 [h, w, 3]."""
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0] = 16 * (j % 16) + 8
    rgb[..., 1] = 16 * (j // 16 % 16) + 8
    rgb[..., 2] = 128
    return rgb


def read_code(rgb: np.ndarray) -> int:
    """Inverse of :func:`code_frame` from the centre of a decoded frame."""
    h, w = rgb.shape[:2]
    r, g = rgb[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4, :2].reshape(-1, 2).mean(axis=0)
    return round((float(r) - 8) / 16) + 16 * round((float(g) - 8) / 16)


def write_timed_video(path: Path, times: list[Fraction], rate: int) -> None:
    """H.264 MP4 whose frame ``j`` (coloured ``code_frame(j)``) has pts ``times[j]`` seconds."""
    tb = Fraction(1, 600)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = SIZE, SIZE, "yuv420p"
        vs.codec_context.time_base = tb
        vs.options = {"crf": "10", "preset": "ultrafast"}
        for j, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(code_frame(j), format="rgb24")
            frame.pts, frame.time_base = int(t / tb), tb
            for packet in vs.encode(frame):
                c.mux(packet)
        for packet in vs.encode(None):
            c.mux(packet)


def expected_sources(times: list[Fraction], last_duration: Fraction, fps: int = 25) -> list[int]:
    """The timestamp rule computed exactly: output i shows the last j with times[j] <= i/fps."""
    end = times[-1] - times[0] + last_duration
    count = int(end * fps + Fraction(1, 2))  # round half up
    out = []
    for i in range(count):
        shown = [j for j, t in enumerate(times) if t - times[0] <= Fraction(i, fps)]
        out.append(shown[-1])
    return out


def tone(seconds: float, rate: int, onset_s: float = 0.0, amp: float = 0.5) -> np.ndarray:
    """A 440 Hz sine of ``seconds`` at ``rate`` that is silent before ``onset_s``: float32 [S]."""
    t = np.arange(round(seconds * rate)) / rate
    x = amp * np.sin(2 * np.pi * 440.0 * (t - onset_s))
    x[t < onset_s] = 0.0
    return x.astype(np.float32)


def onset(x: np.ndarray, threshold: float = 0.1) -> int:
    """Index of the first sample whose magnitude exceeds ``threshold``."""
    above = np.flatnonzero(np.abs(x) > threshold)
    assert len(above), "no onset found"
    return int(above[0])


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def mux_audio(c: av.container.OutputContainer, a: av.AudioStream, x: np.ndarray, rate: int) -> None:
    """Encode mono float ``x`` on the audio stream ``a`` of ``c`` and mux it, flushed."""
    for k in range(0, len(x), 1152):
        frame = av.AudioFrame.from_ndarray(x[None, k : k + 1152], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, k
        for packet in a.encode(frame):
            c.mux(packet)
    for packet in a.encode(None):
        c.mux(packet)


def encode_audio_file(path: Path, codec: str, x: np.ndarray, rate: int) -> None:
    """Encode mono float ``x`` with PyAV's ``codec`` (``aac``, ``libmp3lame``) into ``path``."""
    with av.open(str(path), "w") as c:
        a = c.add_stream(codec, rate=rate)
        a.layout = "mono"
        mux_audio(c, a, x, rate)


@pytest.fixture
def clip(tmp_path: Path) -> tuple[Path, int, np.ndarray]:
    """50 coded frames + a tone that starts at frame 20, encoded with encode_mp4."""
    n = 50
    audio = tone(n / 25, SR, onset_s=20 / 25)
    frames = [code_frame(j) for j in range(n)]
    path = encode_mp4(tmp_path / "clip.mp4", frames, audio=audio, sample_rate=SR, crf=10)
    return path, n, audio


# ----------------------------------------------------------------------------- round trip
def test_round_trip_frames_audio_and_probe(clip: tuple[Path, int, np.ndarray]) -> None:
    path, n, audio = clip
    info = probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (SIZE, SIZE)
    assert info.fps == pytest.approx(25.0)
    assert not info.is_vfr
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert (info.audio_sample_rate, info.audio_channels) == (SR, 1)
    assert info.duration_s == pytest.approx(n / 25, abs=0.04)

    frames = read_video_frames(path)
    assert frames.shape == (n, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert [read_code(f) for f in frames] == list(range(n))

    decoded = load_audio(path)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(len(decoded) - n * 640) <= 640  # within one frame of the video's duration
    assert abs(len(decoded) - len(audio)) <= 640


def test_av_start_aligned(tmp_path: Path) -> None:
    """A flash at frame 20 and a tone onset at sample 20·640 stay together after a round trip."""
    n, k = 50, 20
    frames = [np.full((SIZE, SIZE, 3), 255 if j >= k else 0, np.uint8) for j in range(n)]
    audio = tone(n / 25, SR, onset_s=k / 25)
    path = encode_mp4(tmp_path / "sync.mp4", frames, audio=audio)
    video = read_video_frames(path)
    flash = int(np.flatnonzero(video.mean(axis=(1, 2, 3)) > 128)[0])
    assert flash == k
    got = onset(load_audio(path))
    assert abs(got - k * 640) < 640  # the same frame
    assert abs(got - k * 640) <= 80  # and within 5 ms


def test_iter_video_frames_times_and_max_frames(clip: tuple[Path, int, np.ndarray]) -> None:
    path, _, _ = clip
    frames = list(iter_video_frames(path, max_frames=7))
    assert [f.index for f in frames] == list(range(7))
    assert [f.time_s for f in frames] == pytest.approx([i / 25 for i in range(7)])
    assert [read_code(f.rgb) for f in frames] == list(range(7))


# ----------------------------------------------------------------------------- resampling
@pytest.mark.parametrize(("rate", "count"), [(30, 90), (60, 120), (24, 48)])
def test_constant_rate_sources_resampled_by_timestamps(
    tmp_path: Path, rate: int, count: int
) -> None:
    times = [Fraction(j, rate) for j in range(count)]
    path = tmp_path / f"cfr{rate}.mp4"
    write_timed_video(path, times, rate)
    assert probe(path).fps == pytest.approx(rate, rel=0.01)
    want = expected_sources(times, Fraction(1, rate))
    assert len(want) == round(count / rate * 25)
    got = [read_code(f) for f in read_video_frames(path)]
    assert got == want


def test_variable_frame_rate_source(tmp_path: Path) -> None:
    ms = [0, 30, 50, 120, 130, 300, 310, 320, 600, 700, 1000, 1010, 1500, 1960]
    times = [Fraction(t, 1000) for t in ms]
    path = tmp_path / "vfr.mp4"
    write_timed_video(path, times, 30)
    info = probe(path)
    assert info.is_vfr
    assert info.duration_s == pytest.approx(1.96 + 1 / 30, abs=0.002)
    want = expected_sources(times, Fraction(1, 30))
    assert len(want) == 50  # round((1.96 + 1/30) s × 25 fps)
    got = [read_code(f) for f in read_video_frames(path)]
    assert got == want


def test_long_constant_rate_clip_with_b_frames_is_not_vfr(tmp_path: Path) -> None:
    """More packets than probe scans, stored in decode order (B-frames): still constant rate."""
    path = encode_mp4(tmp_path / "long.mp4", [code_frame(j % 200) for j in range(320)])
    info = probe(path)
    assert not info.is_vfr and info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(320 / 25, abs=0.04)


def test_source_not_starting_at_zero(tmp_path: Path) -> None:
    """The first frame's pts is time 0, whatever its value in the file."""
    times = [Fraction(3, 2) + Fraction(j, 30) for j in range(30)]
    path = tmp_path / "late.mp4"
    write_timed_video(path, times, 30)
    got = [read_code(f) for f in read_video_frames(path)]
    assert got == expected_sources(times, Fraction(1, 30))
    assert len(got) == 25


def test_rotation_from_display_matrix(tmp_path: Path) -> None:
    path = tmp_path / "rot.mp4"
    img = np.zeros((32, 64, 3), np.uint8)
    img[:8, :8] = 255  # top-left marker in the stored picture
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 32, "yuv420p"
        vs.set_display_rotation(90)
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                c.mux(packet)
        for packet in vs.encode(None):
            c.mux(packet)
    info = probe(path)
    assert info.rotation == 90 and (info.width, info.height) == (64, 32)
    upright = read_video_frames(path)
    assert upright.shape == (5, 64, 32, 3)
    # 90° counter-clockwise: the top-left corner moves to the bottom-left.
    assert upright[0, -8:, :8].mean() > 200 and upright[0, :8, :8].mean() < 50
    assert read_video_frames(path, apply_rotation=False).shape == (5, 32, 64, 3)


# ----------------------------------------------------------------------------- audio inputs
@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 2), (48000, 2)])
def test_wav_inputs_become_16k_mono(tmp_path: Path, rate: int, channels: int) -> None:
    seconds, onset_s = 1.3, 0.5
    x = tone(seconds, rate, onset_s=onset_s)
    data = np.stack([1.2 * x, 0.4 * x], axis=1) if channels == 2 else x  # stereo mean = 0.8 x
    path = tmp_path / f"in_{rate}_{channels}.wav"
    sf.write(path, data, rate, subtype="PCM_16")
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - round(seconds * SR)) <= 1
    assert abs(onset(y) - onset_s * SR) <= 16  # 1 ms
    steady = y[int(0.6 * SR) : int(1.2 * SR)]
    assert peak_hz(steady, SR) == pytest.approx(440, abs=3)
    amp = 0.8 * 0.5 if channels == 2 else 0.5  # channels are averaged, not summed
    assert np.sqrt(np.mean(steady**2)) * np.sqrt(2) == pytest.approx(amp, rel=0.03)
    assert y.max() <= 1.0 and y.min() >= -1.0


@pytest.mark.parametrize(("suffix", "codec"), [(".mp3", "libmp3lame"), (".m4a", "aac")])
def test_compressed_audio_inputs_start_aligned(tmp_path: Path, suffix: str, codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    rate, seconds, onset_s = 44100, 2.0, 0.5
    path = tmp_path / f"speech{suffix}"
    encode_audio_file(path, codec, tone(seconds, rate, onset_s=onset_s), rate)
    y = load_audio(path)
    assert abs(len(y) - seconds * SR) <= 640  # within one frame
    assert abs(onset(y) - onset_s * SR) <= 48  # priming removed: within 3 ms
    assert peak_hz(y[int(0.7 * SR) : int(1.8 * SR)], SR) == pytest.approx(440, abs=3)


def test_mp3_with_cover_picture(tmp_path: Path) -> None:
    """A music file's cover art is not video, and does not move the audio's start."""
    rate, path = 44100, tmp_path / "cover.mp3"
    x = tone(2.0, rate, onset_s=0.5)
    with av.open(str(path), "w") as c:
        a = c.add_stream("libmp3lame", rate=rate)
        a.layout = "mono"
        v = c.add_stream("mjpeg", rate=1)
        v.width, v.height, v.pix_fmt = SIZE, SIZE, "yuvj420p"
        v.disposition = av.stream.Disposition.attached_pic
        pic = av.VideoFrame.from_ndarray(code_frame(3), format="rgb24").reformat(format="yuvj420p")
        pic.pts = 0
        for packet in [*v.encode(pic), *v.encode(None)]:
            c.mux(packet)
        mux_audio(c, a, x, rate)
    info = probe(path)
    assert info.has_audio and not info.has_video
    with pytest.raises(MediaError, match="cover picture"):
        read_video_frames(path)
    y = load_audio(path)
    assert abs(onset(y) - 0.5 * SR) <= 48 and abs(len(y) - 2 * SR) <= 640


def test_audio_starting_after_video_is_padded(tmp_path: Path) -> None:
    """Audio whose first sample is 0.5 s into the video is placed 0.5 s into the result."""
    path, offset = tmp_path / "late_audio.mp4", SR // 2
    x = tone(1.0, SR)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = SIZE, SIZE, "yuv420p"
        a = c.add_stream("aac", rate=SR)
        a.layout = "mono"
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(code_frame(i), format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                c.mux(packet)
        for k in range(0, len(x), 1024):
            af = av.AudioFrame.from_ndarray(x[None, k : k + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = SR, k + offset
            for packet in a.encode(af):
                c.mux(packet)
        for packet in [*vs.encode(None), *a.encode(None)]:
            c.mux(packet)
    y = load_audio(path)
    assert abs(onset(y) - offset) <= 48
    assert abs(len(y) - (offset + SR)) <= 640
    assert np.abs(y[: offset - 1100]).max() < 1e-3  # silence, not garbage, before it


def test_load_audio_other_sample_rate(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, tone(1.0, 22050, onset_s=0.25), 22050)
    y = load_audio(path, sample_rate=8000)
    assert len(y) == 8000 and abs(onset(y) - 2000) <= 8


# ----------------------------------------------------------------------------- errors
def test_truncated_mp4_is_a_media_error(clip: tuple[Path, int, np.ndarray], tmp_path: Path) -> None:
    path, _, _ = clip
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])  # the index (moov) is at the end: it is lost
    for fn in (probe, read_video_frames, load_audio):
        with pytest.raises(MediaError, match="corrupt, truncated"):
            fn(cut)


def test_truncated_faststart_mp4_names_the_failure_time(tmp_path: Path) -> None:
    """With the index at the front, the cut shows while decoding: the error says when."""
    path = tmp_path / "fast.mp4"
    rng = np.random.default_rng(0)
    x = tone(3.0, SR)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = SIZE, SIZE, "yuv420p"
        a = c.add_stream("aac", rate=SR)
        a.layout = "mono"
        for i in range(75):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), format="rgb24"
            )
            frame.pts = i
            for packet in vs.encode(frame):
                c.mux(packet)
            for k in range(i * 640 - i * 640 % 1024, (i + 1) * 640 - (i + 1) * 640 % 1024, 1024):
                af = av.AudioFrame.from_ndarray(x[None, k : k + 1024], format="fltp", layout="mono")
                af.sample_rate, af.pts = SR, k
                for packet in a.encode(af):
                    c.mux(packet)
        for packet in [*vs.encode(None), *a.encode(None)]:
            c.mux(packet)
    data = path.read_bytes()
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    for fn in (read_video_frames, load_audio):
        with pytest.raises(MediaError, match=r"failed at \d+\.\d\d s") as info:
            fn(cut)
        found = re.search(r"failed at (\d+\.\d\d) s", str(info.value))
        assert found is not None and 0.2 < float(found.group(1)) < 2.5


def test_text_file_renamed_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my meeting notes, not a video\n" * 50)
    for fn in (probe, read_video_frames, load_audio):
        with pytest.raises(MediaError, match=r"notes\.mp4") as info:
            fn(fake)
        assert type(info.value) is MediaError
        assert not isinstance(info.value, av.error.FFmpegError)


def test_missing_empty_and_folder_inputs(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        read_video_frames(tmp_path / "empty.mp4")
    with pytest.raises(MediaError, match="folder"):
        probe(tmp_path)


def test_missing_streams(tmp_path: Path) -> None:
    wav = tmp_path / "voice.wav"
    sf.write(wav, tone(0.5, SR), SR)
    with pytest.raises(MediaError, match="no video stream"):
        read_video_frames(wav)
    silent = encode_mp4(tmp_path / "silent.mp4", [code_frame(j) for j in range(5)])
    assert not probe(silent).has_audio
    with pytest.raises(MediaError, match="no audio track"):
        load_audio(silent)


# ----------------------------------------------------------------------------- writing
def test_cancelled_writer_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), Mp4Writer(target, SIZE, SIZE, audio=tone(1, SR)) as w:
        for j in range(10):
            w.write(code_frame(j))
        raise KeyboardInterrupt
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_next_write_sweeps_temporaries_of_killed_writers(tmp_path: Path) -> None:
    """A writer killed mid-export leaves ``.NAME.PID-XXXX.part.mp4``; the next write of the same
    file removes it (and an older version's part without a process id), but not the part of a
    live process's write, nor another file's."""
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    target = tmp_path / "take.mp4"
    stale = tmp_path / f".take.mp4.{gone}-abcd1234.part.mp4"
    older = tmp_path / ".take.mp4.k2j4_x9q.part.mp4"
    live = tmp_path / f".take.mp4.{os.getppid()}-abcd1234.part.mp4"
    other = tmp_path / f".take.mp4.b.mp4.{gone}-abcd1234.part.mp4"  # a part of "take.mp4.b.mp4"
    for part in (stale, older, live, other):
        part.write_bytes(b"half an mp4")
    encode_mp4(target, [code_frame(j) for j in range(3)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, live.name, other.name]
    )


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    target = encode_mp4(tmp_path / "out.mp4", [code_frame(j) for j in range(5)])
    before = target.read_bytes()

    def frames():
        yield code_frame(0)
        yield code_frame(1)
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        encode_mp4(target, frames())
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_writer_rejects_odd_sizes_and_wrong_frames(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", 63, 64)
    with (
        pytest.raises(MediaError, match="expected uint8"),
        Mp4Writer(tmp_path / "w.mp4", SIZE, SIZE) as w,
    ):
        w.write(np.zeros((SIZE, SIZE, 3), np.float32))
    with pytest.raises(MediaError, match="no frames"), Mp4Writer(tmp_path / "e.mp4", SIZE, SIZE):
        pass
    assert list(tmp_path.iterdir()) == []


def test_audio_longer_than_video_is_kept(tmp_path: Path) -> None:
    """Audio past the last frame is still written (the player shows the last frame)."""
    path = encode_mp4(
        tmp_path / "long.mp4", [code_frame(j) for j in range(10)], audio=tone(1.0, SR)
    )
    assert abs(len(load_audio(path)) - SR) <= 640
    assert len(read_video_frames(path)) == 10


def test_writer_stereo_audio(tmp_path: Path) -> None:
    stereo = np.stack([tone(1.0, 48000), tone(1.0, 48000, amp=0.1)], axis=1)  # [S, 2]
    path = encode_mp4(
        tmp_path / "st.mp4", [code_frame(j) for j in range(25)], audio=stereo, sample_rate=48000
    )
    info = probe(path)
    assert (info.audio_sample_rate, info.audio_channels) == (48000, 2)
    y = load_audio(path)
    steady = y[2000:14000]
    assert np.sqrt(2 * np.mean(steady**2)) == pytest.approx(0.3, rel=0.05)  # mean of 0.5, 0.1


# ----------------------------------------------------------------------------- real footage
def test_real_clip_may_5s() -> None:
    path = shared_data("May_5s.mp4")
    info = probe(path)
    assert (info.width, info.height, info.fps) == (512, 512, 25.0)
    frames = read_video_frames(path)
    assert frames.shape == (125, 512, 512, 3)
    audio = load_audio(path)
    assert abs(len(audio) / SR - 5.0) <= 0.04
    assert np.abs(audio).max() > 0.05  # speech, not silence
