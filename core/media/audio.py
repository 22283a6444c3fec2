"""Decoding the audio of any file PyAV reads to mono float32 at 16 kHz.

``load_audio`` accepts WAV, MP3, M4A/AAC, FLAC, OGG and the audio track of a video container, at
any sample rate and channel count.

Time 0 and the sample mapping: sample ``k`` of the result is at time ``k / sample_rate`` from the
start of the presentation. The start is the video stream's ``start_time`` when the file also has
video (so audio and video share one clock, docs/design.md "Time"), else the audio stream's
``start_time``, else the first decoded frame's pts. Every decoded frame is placed by its own pts:
samples before the start (codec priming/pre-roll that the demuxer did not already remove) are
dropped, and gaps are filled with silence, so a tone that starts at ``t`` seconds in the source
starts at sample ``t * sample_rate`` here. The result is cut to the stream's declared duration
when one is known (AAC's trailing padding is removed).

:func:`load_audio_native` keeps the source's rate and (up to two) channels, for exports.

Channels are downmixed by averaging them (FFmpeg's own stereo→mono matrix sums at −3 dB, which
can exceed 1); the mono signal is then resampled by PyAV's ``AudioResampler`` (``flt``, mono,
``sample_rate``), flushed at the end, and clipped to [-1, 1].

Errors follow the package policy (see ``_errors``): missing/unreadable files, files without audio,
files that break part-way (the message names the time) and truncated files raise
:class:`~talkstudio.core.errors.MediaError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from ..errors import MediaError
from ._errors import AV_ERRORS, decode_failed, first_video, open_input, stream_summary

#: Timestamp jitter (seconds) tolerated before a frame is shifted, i.e. before a gap is filled
#: with silence or an overlap is dropped.
JITTER_S = 0.002

#: Audio that ends more than this many seconds (and 5 % of its length) before the declared
#: duration of its stream is reported as truncated.
TRUNCATION_TOLERANCE_S = 0.5

_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """The samples of a decoded audio frame as float32 ``[C, n]`` in [-1, 1]."""
    name = frame.format.name
    base = name.rstrip("p")
    channels = frame.layout.nb_channels if frame.layout is not None else 1
    arr = frame.to_ndarray()  # planar: [C, n]; packed: [1, n * C]
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if base in ("flt", "dbl"):
        return arr.astype(np.float32, copy=False)
    if base == "u8":
        return ((arr.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if base in _INT_SCALE:
        return (arr.astype(np.float64) / _INT_SCALE[base]).astype(np.float32)
    raise ValueError(f"unsupported audio sample format {name!r}")


@dataclass
class _Decoded:
    """What :func:`_decode_placed` found out about the stream while placing its frames."""

    name: str = ""
    src_rate: int = 0
    written: int = 0  # source-rate samples placed so far
    keep_s: float = 0.0  # seconds to keep from the origin (set after the last frame)


def _decode_placed(path: str | os.PathLike[str], info: _Decoded) -> Iterator[np.ndarray]:
    """The first audio stream of ``path`` as float32 ``[C, n]`` chunks at the source rate,
    placed by their pts from the origin (module docstring); ``info`` is filled in on the way and
    its ``keep_s`` once the generator is exhausted."""
    with open_input(path) as c:
        info.name = c.name
        if not c.streams.audio:
            raise MediaError(
                f"{c.name} has no audio track (it has: {stream_summary(c)}). Choose a file with "
                "sound, or add the speech as a separate WAV/MP3/M4A file."
            )
        stream = c.streams.audio[0]
        tb = float(stream.time_base) if stream.time_base else 0.0
        origin: float | None = None
        video = first_video(c)
        if video is not None and video.start_time is not None and video.time_base:
            origin = float(video.start_time * video.time_base)
        elif stream.start_time is not None and tb:
            origin = stream.start_time * tb
        try:
            for frame in c.decode(stream):
                if info.src_rate == 0:
                    info.src_rate = frame.sample_rate
                elif frame.sample_rate != info.src_rate:
                    raise MediaError(
                        f"{c.name}: the audio sample rate changes mid-stream ({info.src_rate} → "
                        f"{frame.sample_rate} Hz) at {info.written / info.src_rate:.2f} s. "
                        "Re-export the audio at one sample rate."
                    )
                samples = frame_to_float(frame)  # [C, n]
                if frame.pts is not None and tb:
                    if origin is None:
                        origin = frame.pts * tb
                    pos = round((frame.pts * tb - origin) * info.src_rate)
                    tol = JITTER_S * info.src_rate
                    if pos > info.written + tol:  # a gap, or a late start: silence
                        gap = np.zeros((samples.shape[0], pos - info.written), np.float32)
                        samples = np.concatenate([gap, samples], axis=1)
                    elif pos < info.written - tol:  # priming / overlap: drop what lies before
                        samples = samples[:, info.written - pos :]
                if samples.shape[1] == 0:
                    continue
                info.written += samples.shape[1]
                yield samples
        except AV_ERRORS as err:
            at = info.written / info.src_rate if info.src_rate else 0.0
            raise decode_failed(c.name, at, err) from err
        if info.src_rate == 0 or info.written == 0:
            raise MediaError(
                f"{c.name}: its audio track has no decodable samples. The file is corrupt or "
                "truncated; re-export it and try again."
            )
        decoded_s = info.written / info.src_rate  # the end of the placed audio, from the origin
        declared_s = 0.0  # the end the stream declares, seconds from the origin
        if stream.duration and tb:
            declared_s = float(stream.duration * tb)
            if stream.start_time is not None and origin is not None:
                declared_s += stream.start_time * tb - origin
        if declared_s - decoded_s > max(TRUNCATION_TOLERANCE_S, 0.05 * declared_s):
            raise MediaError(
                f"{c.name}: decoding failed at {decoded_s:.2f} s: the audio ends there although "
                f"the file declares {declared_s:.2f} s. The file is truncated or corrupt; "
                "re-export it."
            )
        info.keep_s = min(decoded_s, declared_s) if declared_s > 0 else decoded_s


def _fit(out: np.ndarray, length: int) -> np.ndarray:
    """``out`` [..., S] cut or padded with silence to ``length`` samples, clipped to [-1, 1]."""
    if out.shape[-1] < length:
        pad = np.zeros((*out.shape[:-1], length - out.shape[-1]), np.float32)
        out = np.concatenate([out, pad], axis=-1)
    return np.clip(out[..., :length], -1.0, 1.0).astype(np.float32, copy=False)


def load_audio(path: str | os.PathLike[str], sample_rate: int = 16000) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 ``[S]`` at ``sample_rate``.

    See the module docstring for the start/duration rules. Raises :class:`MediaError` for
    unreadable files, files without audio and files that are corrupt or truncated.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []  # each [n] float32 at sample_rate
    info = _Decoded()
    for samples in _decode_placed(path, info):
        chunks.extend(_resample(resampler, samples.mean(axis=0), info.src_rate))
    try:
        chunks.extend(_flush(resampler))
    except AV_ERRORS as err:
        raise decode_failed(info.name, info.written / info.src_rate, err) from err
    out = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return _fit(out, round(info.keep_s * sample_rate))


def load_audio_native(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """The first audio stream of ``path`` at its own rate and channels: float32 ``[C, S]``
    (C = 1 or 2; more channels are averaged into mono) and the sample rate.

    Same start/duration rules and errors as :func:`load_audio`; what an export writes so the
    driving speech keeps its quality (the 16 kHz mono copy is for analysis).
    """
    info = _Decoded()
    chunks = list(_decode_placed(path, info))
    out = np.concatenate(chunks, axis=1)  # [C, S]
    if out.shape[0] > 2:
        out = out.mean(axis=0, keepdims=True)
    return _fit(out, round(info.keep_s * info.src_rate)), info.src_rate


def _resample(resampler: av.AudioResampler, mono: np.ndarray, rate: int) -> list[np.ndarray]:
    frame = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    return [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]


def _flush(resampler: av.AudioResampler) -> list[np.ndarray]:
    return [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
