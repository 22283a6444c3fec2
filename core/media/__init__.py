"""Media input/output: decode video and audio, encode MP4, probe streams (PyAV).

- :func:`probe` → :class:`MediaInfo` (streams, duration, size, fps, VFR, rotation).
- :func:`iter_video_frames` / :func:`read_video_frames`: RGB frames at 25 fps, resampled by
  timestamps (output frame ``i`` shows the source frame displayed at ``i / fps``; the count is
  ``round(duration * fps)``); see :mod:`.video`.
- :func:`load_audio`: mono float32 at 16 kHz from any container, rate and channel count,
  start-aligned; :func:`load_audio_native` at the file's own rate and channels; see
  :mod:`.audio`.
- :class:`Mp4Writer` / :func:`encode_mp4`: H.264 + AAC MP4, A/V from time 0, written
  atomically; see :mod:`.encode`.

Every failure raises :class:`~talkstudio.core.errors.MediaError` with a message saying what is
wrong and what to do; no ``av.error`` exception escapes (see :mod:`._errors`).
"""

from .audio import load_audio, load_audio_native
from .encode import Mp4Writer, encode_mp4
from .probe import MediaInfo, probe
from .video import VideoFrame, iter_video_frames, read_video_frames

__all__ = [
    "MediaInfo",
    "Mp4Writer",
    "VideoFrame",
    "encode_mp4",
    "iter_video_frames",
    "load_audio",
    "load_audio_native",
    "probe",
    "read_video_frames",
]
