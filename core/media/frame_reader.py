"""Random access to the frames of a video at a fixed frame rate, decoded as they are asked for.

:class:`FrameReader` answers "output frame ``i``" with the same picture
:func:`~talkstudio.core.media.iter_video_frames` yields as its frame ``i`` (the timestamp rule
of docs/design.md "Time": the last source frame whose time is ``<= i / fps``), without decoding
the whole video or holding it in memory. Requests that move forward continue the running
decoder; a request behind it (the driving track plays its reference frames forward then back)
seeks to the key frame before a block of frames that ends at the request, decodes the block once
and keeps it in a small cache, so a backward run costs one seek per block, not one per frame.

Frames past the end of the video repeat its last frame (as :func:`iter_video_frames` does for
the last output frames). Errors are :class:`~talkstudio.core.errors.MediaError`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator

import av
import numpy as np

from ..closing import Closes
from ..errors import MediaError
from ._errors import AV_ERRORS, check_readable, decode_failed, first_video, stream_summary
from .video import EPS_S, _to_rgb

CACHE_BYTES = 256 * 1024 * 1024
"""Decoded frames kept for backward runs (~90 frames of 720p, ~40 of 1080p)."""
MAX_BLOCK = 50
"""Most frames decoded per backward seek."""


class FrameReader(Closes):
    """Frame ``i`` at ``fps`` of ``path`` as RGB uint8 ``[H, W, 3]`` (upright), on demand.

    Use as a context manager (or call :meth:`close`)::

        with FrameReader("talk.mp4") as reader:
            rgb = reader[120]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = 25,
        cache_bytes: int = CACHE_BYTES,
        apply_rotation: bool = True,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = check_readable(path)
        self.fps = float(fps)
        self.cache_bytes = int(cache_bytes)
        self.apply_rotation = apply_rotation
        try:
            self._container = av.open(str(self.path), mode="r")
        except AV_ERRORS as err:
            raise MediaError(
                f"{self.path} cannot be read as video ({err}); re-export it and try again"
            ) from err
        stream = first_video(self._container)
        if stream is None:
            summary = stream_summary(self._container)
            self._container.close()
            raise MediaError(f"{self.path} has no video stream (it has: {summary})")
        stream.thread_type = "AUTO"
        self._stream = stream
        self._tb = float(stream.time_base) if stream.time_base else 0.0
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decoder: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] = iter(self._container.decode(stream))
        self._prev: tuple[float, av.VideoFrame] | None = None  # last frame with time <= target
        self._next: tuple[float, av.VideoFrame] | None = None  # first frame past the target
        self._ended = False
        self._rotation = 0
        self._origin = 0.0
        first = self._advance()
        if first is None:
            self.close()
            raise MediaError(f"{self.path}: its video stream has no decodable frames")
        self._origin = first[0]
        self._rotation = round(first[1].rotation) if apply_rotation else 0
        self._prev = (0.0, first[1])

    # -- public ------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> np.ndarray:
        if index < 0:
            raise IndexError(f"frame {index} is before the start of {self.path}")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        target = index / self.fps + EPS_S
        assert self._prev is not None
        if self._prev[0] > target:  # behind the decoder: decode the block that ends at `index`
            block = max(1, min(MAX_BLOCK, self._capacity()))
            first = max(0, index - block + 1)
            self._seek(first / self.fps + EPS_S)
            for k in range(first, index):
                self._keep(k, self._show(k / self.fps + EPS_S))
        rgb = self._show(target)
        self._keep(index, rgb)
        return rgb

    def close(self) -> None:
        self._cache.clear()
        self._container.close()

    # -- decoding ----------------------------------------------------------------------------
    def _restart(self, pts: int) -> None:
        """Start decoding again from the key frame at or before ``pts`` (stream time base)."""
        try:
            self._container.seek(pts, stream=self._stream, backward=True)
        except AV_ERRORS as err:
            raise decode_failed(self.path, pts * self._tb - self._origin, err) from err
        self._frames = iter(self._container.decode(self._stream))
        self._next = None
        self._ended = False

    def _advance(self) -> tuple[float, av.VideoFrame] | None:
        """The next decoded frame with its time (seconds from the first frame), None at the end."""
        try:
            frame = next(self._frames)
        except StopIteration:
            self._ended = True
            return None
        except AV_ERRORS as err:
            at = self._prev[0] if self._prev is not None else 0.0
            raise decode_failed(self.path, at, err) from err
        if frame.pts is not None and self._tb:
            t = frame.pts * self._tb - self._origin
        else:  # no time stamp: one nominal frame after the previous one
            rate = self._stream.average_rate or self._stream.guessed_rate
            gap = 1.0 / float(rate) if rate else 1.0 / self.fps
            t = (self._prev[0] + gap) if self._prev is not None else 0.0
        return t, frame

    def _seek(self, target: float) -> None:
        """Decode from a key frame at or before time ``target``, up to the frame shown there."""
        back = 0.0
        while True:
            start = max(0.0, target - back)
            self._restart(round((start + self._origin) / self._tb) if self._tb else 0)
            got = self._advance()
            if got is None:
                raise MediaError(f"{self.path}: seeking to {target:.2f} s found no frames")
            if got[0] <= target or start == 0.0 or not self._tb:
                self._prev = got
                return
            back = max(1.0, 2 * back)  # it landed past the target: seek further back

    def _show(self, target: float) -> np.ndarray:
        """Decode forward to the last frame whose time is ``<= target``; its picture."""
        assert self._prev is not None
        while not self._ended:
            if self._next is None:
                self._next = self._advance()
                if self._next is None:
                    break
            if self._next[0] > target:
                break
            self._prev, self._next = self._next, None
        return _to_rgb(self._prev[1], self._rotation)

    def _capacity(self) -> int:
        """Frames the cache holds within its byte budget."""
        frame = self._prev[1] if self._prev is not None else None
        per = 3 * frame.width * frame.height if frame is not None else 1
        return max(1, self.cache_bytes // max(per, 1))

    def _keep(self, index: int, rgb: np.ndarray) -> None:
        self._cache[index] = rgb
        self._cache.move_to_end(index)
        while len(self._cache) > self._capacity():
            self._cache.popitem(last=False)
