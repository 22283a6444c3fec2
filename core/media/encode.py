"""Encoding RGB frames and mono audio into an MP4 (H.264 + AAC), atomically.

:class:`Mp4Writer` writes H.264 (libx264, yuv420p, constant rate factor ``crf``) at a constant
``fps`` and, when given, AAC audio, into an MP4. Frame ``i`` has pts ``i`` in a ``1/fps`` time
base, so it is shown at ``i / fps``; audio sample ``k`` has pts ``k`` in ``1/sample_rate``, so
both streams start at time 0 (docs/design.md "Time": frame ``i`` covers samples ``[i·640, (i+1)·640)``
at 25 fps and 16 kHz). The audio is muxed interleaved with the video — after each frame, the
audio up to that frame's end — and what remains is written at the end. The MP4 muxer records
AAC's encoder priming in an edit list, so decoders present the first sample at time 0.

Sizes: yuv420p needs even width and height; odd sizes raise :class:`MediaError` (crop or pad the
frames by one pixel first). Nothing is padded silently.

Atomicity: the file is written under a temporary name beside the target
(``core.atomic.atomic_path``, which keeps the ``.mp4`` suffix) and renamed onto the target only
when the ``with`` block ends without an exception. On an exception (including a cancel) the
temporary is removed and nothing appears under the target name; an existing file there is left
untouched. Errors follow the package policy: every failure raises
:class:`~talkstudio.core.errors.MediaError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from ..atomic import atomic_path, sweep_stale_parts
from ..errors import MediaError
from ._errors import AV_ERRORS, describe

#: AAC bit rate in bits per second for mono audio (doubled for stereo).
AAC_BIT_RATE = 96_000

#: Audio samples per AAC frame.
AAC_FRAME = 1024


def _as_audio(audio: np.ndarray) -> np.ndarray:
    """Audio as float32 planar ``[C, S]`` (C = 1 or 2) in [-1, 1]."""
    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim == 2 and arr.shape[1] in (1, 2) and arr.shape[0] > 2:
        arr = arr.T  # [S, C] -> [C, S]
    if arr.ndim != 2 or arr.shape[0] not in (1, 2):
        raise MediaError(
            f"audio must be mono [S] or [S, C] with C = 1 or 2, got shape {np.shape(audio)}"
        )
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    return np.ascontiguousarray(np.clip(arr, -1.0, 1.0), dtype=np.float32)


class Mp4Writer:
    """Write an MP4 frame by frame; the file appears at ``path`` only on a clean exit.

    ``audio`` is mono ``[S]`` (or ``[S, 2]`` stereo) float in [-1, 1] at ``sample_rate``;
    ``rgb`` frames are uint8 ``[height, width, 3]``. Use as a context manager::

        with Mp4Writer(out, 512, 512, audio=wav) as w:
            for frame in frames:
                w.write(frame)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: int = 25,
        audio: np.ndarray | None = None,
        sample_rate: int = 16000,
        crf: int = 20,
        preset: str = "medium",
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise MediaError(
                f"cannot encode {width}×{height}: H.264 in yuv420p needs a positive, even width "
                "and height. Crop or pad the frames by one pixel."
            )
        if fps <= 0 or sample_rate <= 0:
            raise MediaError(f"fps and sample_rate must be positive, got {fps} and {sample_rate}")
        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.sample_rate, self.crf, self.preset = int(sample_rate), int(crf), preset
        self.audio = _as_audio(audio) if audio is not None else None  # [C, S]
        self.frames_written = 0
        self._audio_done = 0  # samples of self.audio already sent to the encoder
        self._target: contextlib.AbstractContextManager[Path] | None = None
        self._container: av.container.OutputContainer | None = None

    def __enter__(self) -> Mp4Writer:
        sweep_stale_parts(self.path)  # what a killed earlier export of this file left behind
        self._target = atomic_path(self.path)
        tmp = self._target.__enter__()
        try:
            self._container = av.open(str(tmp), mode="w", format="mp4")
            vs = self._container.add_stream("libx264", rate=self.fps)
            vs.width, vs.height, vs.pix_fmt = self.width, self.height, "yuv420p"
            vs.options = {"crf": str(self.crf), "preset": self.preset}
            self._video = vs
            if self.audio is not None:
                a = self._container.add_stream("aac", rate=self.sample_rate)
                a.layout = "mono" if self.audio.shape[0] == 1 else "stereo"
                a.bit_rate = AAC_BIT_RATE * self.audio.shape[0]
                self._astream = a
        except AV_ERRORS as err:
            error = MediaError(f"cannot start writing {self.path}: {describe(err)}")
            self._abort(error)
            raise error from err
        except BaseException as err:
            self._abort(err)
            raise
        return self

    def write(self, rgb: np.ndarray) -> None:
        """Encode one frame, uint8 ``[height, width, 3]`` RGB, and the audio that it covers."""
        if self._container is None:
            raise MediaError("Mp4Writer.write() called outside its `with` block")
        arr = np.asarray(rgb)
        if arr.shape != (self.height, self.width, 3) or arr.dtype != np.uint8:
            raise MediaError(
                f"frame {self.frames_written} for {self.path} is {arr.dtype} {arr.shape}; "
                f"expected uint8 ({self.height}, {self.width}, 3)"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        frame.pts = self.frames_written
        try:
            self._mux(self._video.encode(frame))
            self.frames_written += 1
            end = self.frames_written * self.sample_rate // self.fps
            self._write_audio(end - end % AAC_FRAME)
        except AV_ERRORS as err:
            raise MediaError(f"encoding {self.path} failed: {describe(err)}") from err

    def _mux(self, packets: Iterable[av.Packet]) -> None:
        assert self._container is not None
        for packet in packets:
            self._container.mux(packet)

    def _write_audio(self, until: int) -> None:
        """Send audio samples ``[_audio_done, until)`` to the AAC encoder in 1024-sample frames."""
        if self.audio is None:
            return
        until = min(until, self.audio.shape[1])
        layout = "mono" if self.audio.shape[0] == 1 else "stereo"
        while self._audio_done < until:
            stop = min(self._audio_done + AAC_FRAME, until)
            chunk = np.ascontiguousarray(self.audio[:, self._audio_done : stop])  # [C, n]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = self.sample_rate
            frame.pts = self._audio_done
            self._mux(self._astream.encode(frame))
            self._audio_done = stop

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._target is None:
            return
        if exc is not None:
            self._abort(exc)
            return
        try:
            if self.frames_written == 0:
                raise MediaError(f"no frames were written to {self.path}; nothing was saved")
            try:
                self._write_audio(self.audio.shape[1] if self.audio is not None else 0)
                self._mux(self._video.encode(None))
                if self.audio is not None:
                    self._mux(self._astream.encode(None))
                assert self._container is not None
                self._container.close()
                self._container = None
            except AV_ERRORS as err:
                raise MediaError(f"finishing {self.path} failed: {describe(err)}") from err
        except BaseException as err:
            self._abort(err)
            raise
        target, self._target = self._target, None
        target.__exit__(None, None, None)  # fsync and rename onto the target

    def _abort(self, err: BaseException) -> None:
        """Close the container quietly and let ``atomic_path`` remove the temporary."""
        if self._container is not None:
            with contextlib.suppress(*AV_ERRORS, OSError):
                self._container.close()
            self._container = None
        target, self._target = self._target, None
        if target is not None:
            target.__exit__(type(err), err, err.__traceback__)  # removes it, returns False


def encode_mp4(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    fps: int = 25,
    crf: int = 20,
) -> Path:
    """Encode ``frames`` (uint8 ``[H, W, 3]`` each) and optional ``audio`` into ``path``.

    The size is taken from the first frame. Returns ``path`` as a :class:`Path`. The file
    appears only when everything was written (see :class:`Mp4Writer`).
    """
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise MediaError(f"no frames to encode into {path}; nothing was saved")
    first = np.asarray(first)
    if first.ndim != 3 or first.shape[2] != 3:
        raise MediaError(f"frames must be uint8 [H, W, 3], got shape {first.shape}")
    height, width = first.shape[:2]
    with Mp4Writer(
        path, width, height, fps=fps, audio=audio, sample_rate=sample_rate, crf=crf
    ) as w:
        w.write(first)
        for rgb in it:
            w.write(rgb)
    return Path(path)
