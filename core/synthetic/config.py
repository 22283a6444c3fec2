"""Settings of a synthetic subject and the random streams derived from its seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TalkstudioError

RGB = tuple[int, int, int]

# Independent random streams of one seed (np.random.default_rng([seed, STREAM])).
STREAM_LOOK, STREAM_SPEECH, STREAM_MOTION, STREAM_BLINK, STREAM_BACKGROUND, STREAM_NOISE = range(6)


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines a synthetic subject; the same config gives the same bytes."""

    seed: int = 0
    """Seed of every random choice: voice, words, head motion, blinks, looks, background, noise."""
    seconds: float = 8.0
    """Length of the clip in seconds (frames: ceil(seconds * 16000 / 640))."""
    size: int = 256
    """Side of the square frames in pixels (any size; the scene is resolution independent)."""
    focal: float | None = None
    """Focal length in pixels at ``size``; None: ``core.geometry.default_intrinsics`` (1.2 size)."""
    distance: float = 5.0
    """Camera to head-frame origin in head units (10 cm): 5.0 is 50 cm."""
    background_color: RGB | None = None
    """Main wall colour of the background (RGB 0-255); None: chosen by the seed."""
    torso_color: RGB | None = None
    """Colour of the shirt; None: chosen by the seed."""
    skin_color: RGB | None = None
    """Base skin colour; None: chosen by the seed among several skin tones."""
    hair_color: RGB | None = None
    """Hair and brow colour; None: chosen by the seed."""
    iris_color: RGB | None = None
    """Iris colour; None: chosen by the seed."""
    head_motion: float = 1.0
    """Scale of the head's motion: 1 gives about 4 deg yaw, 3 deg pitch, 2 deg roll at most."""
    mouth_max: float = 0.15
    """Jaw drop (head units) at the loudest speech; the inner-lip gap grows by as much."""
    blink_interval: tuple[float, float] = (2.0, 5.0)
    """Range (seconds) of the random time between two blinks."""
    supersample: int = 2
    """Rendering is done at ``supersample`` times the size and box-filtered down (anti-aliasing)."""
    noise: float = 1.5
    """Standard deviation of the camera's sensor noise in 8-bit levels (0: none)."""
    mesh_step: float = 0.22
    """Grid spacing of the skin mesh in cm (the other meshes are coarser)."""
    frame_ext: str = ".png"
    """Image format of the subject's frames: ".png" (lossless, exact) or ".jpg"."""
    name: str = "synthetic"
    """Display name written into ``subject.json``."""

    def check(self) -> None:
        """Raise a clear error for settings that cannot make a subject."""
        if self.seconds <= 0.0 or self.seconds > 3600.0:
            raise TalkstudioError(f"synthetic seconds must be in (0, 3600], got {self.seconds}")
        if self.size < 32 or self.size > 4096 or self.size % 2:
            raise TalkstudioError(
                f"synthetic size must be an even number of pixels in 32..4096 (H.264 needs an "
                f"even frame size), got {self.size}"
            )
        if self.supersample < 1 or self.supersample > 4:
            raise TalkstudioError(f"supersample must be 1..4, got {self.supersample}")
        if self.distance < 2.0:
            raise TalkstudioError(
                f"distance {self.distance} head units puts the camera in the head"
            )
        if self.frame_ext not in (".png", ".jpg"):
            raise TalkstudioError(f"frame_ext must be '.png' or '.jpg', got {self.frame_ext!r}")
        lo, hi = self.blink_interval
        if not 0.5 <= lo <= hi:
            raise TalkstudioError(
                f"blink_interval must be (lo, hi) with 0.5 <= lo <= hi, got {lo, hi}"
            )

    @property
    def K(self) -> np.ndarray:
        """Intrinsics [3, 3] at ``size``."""
        from ..geometry import default_intrinsics

        return default_intrinsics(self.size, self.focal)

    def rng(self, stream: int, *more: int) -> np.random.Generator:
        """The random generator of one stream (and sub-stream) of this seed."""
        return np.random.default_rng([int(self.seed) & 0xFFFFFFFF, stream, *more])
