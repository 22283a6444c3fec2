"""The on-disk subject folder: the one place that reads, writes and validates it.

The format is specified in ``docs/subject-format.md``; this module is its implementation.
Nothing in a subject folder is unpickled: arrays are ``.npz`` read with ``allow_pickle=False``,
models are safetensors, everything else is JSON, PNG/JPEG or WAV. Every write is atomic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .errors import SubjectError
from .landmarks import NUM_LANDMARKS
from .timing import FPS, SAMPLE_RATE, num_frames

FORMAT_NAME = "talkstudio.subject"
FORMAT_VERSION = 2
"""2 adds the source video's identity and the crop transform to ``source``; version-1 folders
are migrated on read (:func:`migrate_meta`)."""
MODEL_PARTS = ("stage1", "head", "torso", "refiner")
VALIDATION_FRACTION = 0.1

# Bits of the per-frame label mask (masks/NNNNNN.png, uint8).
MASK_PERSON = 1
MASK_HEAD = 2
MASK_TORSO = 4
MASK_FACE = 8
MASK_LEFT_EYE = 16
MASK_RIGHT_EYE = 32
MASK_MOUTH = 64

TRACK_KEYS: dict[str, tuple[tuple[str | int, ...], str]] = {
    # key: (shape with "T" for the frame count, dtype kind)
    "lm2d": (("T", NUM_LANDMARKS, 2), "f"),
    "lm_world": (("T", NUM_LANDMARKS, 3), "f"),
    "pose": (("T", 4, 4), "f"),
    "eye_ratio": (("T", 2), "f"),
    "tracked": (("T",), "b"),
    "mean_shape": ((NUM_LANDMARKS, 3), "f"),
    "eye_open_area": ((2,), "f"),
}


@dataclass
class SubjectMeta:
    """Contents of ``subject.json``."""

    name: str
    """Display name of the subject."""
    size: int
    """Side in pixels of the stored square frames; ``intrinsics`` refer to this size."""
    num_frames: int
    """Number of frames T at 25 fps."""
    intrinsics: list[list[float]]
    """Pinhole K [3, 3] in pixels at ``size`` (see core.geometry)."""
    head_bbox: list[list[float]]
    """[[xmin, ymin, zmin], [xmax, ymax, zmax]] of the head in head units: the NeRF's box."""
    has_audio: bool = True
    """Whether ``audio.wav`` exists (a silent source still makes a subject)."""
    frame_ext: str = ".jpg"
    """Image format of frames/: ".jpg" or ".png"."""
    train_frames: int = 0
    """Frames [0, train_frames) train; [train_frames, num_frames) validate. 0: last 10 % validate."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the subject came from: {"kind": "video"|"synthetic", ...}."""
    fps: int = FPS
    sample_rate: int = SAMPLE_RATE
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.train_frames <= 0:
            self.train_frames = default_train_frames(self.num_frames)

    @property
    def K(self) -> np.ndarray:
        """Intrinsics [3, 3] as float64."""
        return np.asarray(self.intrinsics, dtype=np.float64)

    @property
    def train_range(self) -> range:
        return range(0, self.train_frames)

    @property
    def val_range(self) -> range:
        return range(self.train_frames, self.num_frames)


LONGEST_FILLED_GAP = round(0.5 * FPS)
"""Untracked runs up to this many frames are used like tracked ones (preprocessing interpolates
them: its ``max_gap_s`` default); longer runs are left out of training and of driven tracks."""


def steady_frames(
    tracked: np.ndarray,
    frames: range | list[int] | np.ndarray,
    longest_gap: int = LONGEST_FILLED_GAP,
) -> np.ndarray:
    """``frames`` without the untracked runs (``tracked`` [T] False) longer than ``longest_gap``
    frames, where preprocessing held or interpolated a pose the video does not show (a title
    before the speaker appears, a cutaway, a face turned away). Short runs, smoothly
    interpolated, stay; so does everything when nothing else would be left."""
    from .preprocess.tracking import runs

    ref = np.asarray(frames, dtype=np.int64)
    keep = np.ones(len(ref), bool)
    for a, b in runs(~np.asarray(tracked, bool)[ref]):
        if b - a > longest_gap:
            keep[a:b] = False
    return ref[keep] if keep.any() else ref


def default_train_frames(total: int) -> int:
    """Frames in the training split: all but the last 10 % (at least one frame each side)."""
    if total < 2:
        return total
    return min(total - 1, max(1, total - int(np.ceil(total * VALIDATION_FRACTION))))


@dataclass
class Tracks:
    """Per-frame tracks of a subject (``tracks.npz``), see docs/subject-format.md."""

    lm2d: np.ndarray  # [T, 68, 2] pixels at meta.size
    lm_world: np.ndarray  # [T, 68, 3] head frame, head units
    pose: np.ndarray  # [T, 4, 4] head-to-camera
    eye_ratio: np.ndarray  # [T, 2] (subject's left, right) opening area / s0
    tracked: np.ndarray  # [T] bool, False where interpolated
    mean_shape: np.ndarray  # [68, 3] mean of lm_world over the training split
    eye_open_area: np.ndarray  # [2] s0 per eye (left, right), head units^2

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k)) for k in TRACK_KEYS}


class Subject:
    """A subject folder opened for reading (and writing of its models)."""

    def __init__(self, root: str | Path, meta: SubjectMeta) -> None:
        self.root = Path(root)
        self.meta = meta
        self._tracks: Tracks | None = None

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path, validate: bool = True) -> Subject:
        """Open ``root``; by default run :func:`validate` and raise on the first problem."""
        root = Path(root)
        meta = read_meta(root)
        subject = cls(root, meta)
        if validate:
            problems = validate_subject(root, meta)
            if problems:
                raise SubjectError(
                    f"{root} is not a valid subject folder:\n  - "
                    + "\n  - ".join(problems)
                    + "\nRe-run `talkstudio preprocess` on the source video to rebuild it."
                )
        return subject

    # -- paths ---------------------------------------------------------------------------------
    def frame_path(self, i: int) -> Path:
        return self.root / "frames" / f"{i:06d}{self.meta.frame_ext}"

    def mask_path(self, i: int) -> Path:
        return self.root / "masks" / f"{i:06d}.png"

    @property
    def audio_path(self) -> Path:
        return self.root / "audio.wav"

    @property
    def background_path(self) -> Path:
        return self.root / "background.png"

    def steady_train_frames(self) -> list[int]:
        """The training split without its long untracked runs (:func:`steady_frames`): the
        frames the head, torso and refiner learn from."""
        return steady_frames(self.tracks.tracked, self.meta.train_range).tolist()

    def model_dir(self, part: str) -> Path:
        if part not in MODEL_PARTS:
            raise ValueError(f"unknown model part {part!r}; expected one of {MODEL_PARTS}")
        return self.root / "models" / part

    def has_model(self, part: str) -> bool:
        d = self.model_dir(part)
        return (d / "model.safetensors").is_file() and (d / "config.json").is_file()

    # -- reading -------------------------------------------------------------------------------
    @property
    def tracks(self) -> Tracks:
        if self._tracks is None:
            self._tracks = read_tracks(self.root / "tracks.npz")
        return self._tracks

    def load_frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as RGB uint8 [size, size, 3]."""
        return _read_image(self.frame_path(i), color=True)

    def load_mask(self, i: int) -> np.ndarray:
        """Label mask of frame ``i`` as uint8 [size, size] (bits MASK_*)."""
        return _read_image(self.mask_path(i), color=False)

    def load_background(self) -> np.ndarray:
        """Background plate as RGB uint8 [size, size, 3]."""
        return _read_image(self.background_path, color=True)

    def load_audio(self) -> np.ndarray:
        """The subject's speech as mono float32 at 16 kHz [S]."""
        if not self.meta.has_audio or not self.audio_path.is_file():
            raise SubjectError(
                f"subject {self.root} has no audio track (its source video had none). "
                "Stage-1 training needs speech: preprocess a video with sound."
            )
        import soundfile as sf

        audio, rate = sf.read(str(self.audio_path), dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            raise SubjectError(f"{self.audio_path} is {rate} Hz; subjects store 16000 Hz audio")
        return audio.mean(axis=1)

    # -- writing -------------------------------------------------------------------------------
    def write_meta(self) -> None:
        write_meta(self.root, self.meta)

    def write_tracks(self, tracks: Tracks) -> None:
        atomic.write_npz(self.root / "tracks.npz", **tracks.arrays())
        self._tracks = tracks

    def write_frame(self, i: int, rgb: np.ndarray) -> None:
        _write_image(self.frame_path(i), rgb)

    def write_mask(self, i: int, labels: np.ndarray) -> None:
        _write_image(self.mask_path(i), labels.astype(np.uint8))

    def write_background(self, rgb: np.ndarray) -> None:
        _write_image(self.background_path, rgb)

    def write_audio(self, audio: np.ndarray) -> None:
        import soundfile as sf

        with atomic.atomic_path(self.audio_path) as tmp:
            sf.write(str(tmp), np.asarray(audio, dtype=np.float32), SAMPLE_RATE, subtype="FLOAT")

    def write_report(self, name: str, obj: Any) -> None:
        atomic.write_json(self.root / name, obj)


# -- subject.json --------------------------------------------------------------------------------
def read_meta(root: Path) -> SubjectMeta:
    path = root / "subject.json"
    if not root.is_dir():
        raise SubjectError(f"{root} does not exist or is not a folder")
    if not path.is_file():
        raise SubjectError(
            f"{root} has no subject.json, so it is not a subject folder. "
            "Create one with `talkstudio preprocess VIDEO --out FOLDER`."
        )
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubjectError(f"{path} is not valid JSON ({exc}); the file is damaged") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise SubjectError(f"{path} is not a Talkstudio subject description")
    version = raw.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SubjectError(
            f"{root} was written in subject format version {version}, newer than this "
            f"Talkstudio understands (version {FORMAT_VERSION}). Update Talkstudio to open it."
        )
    known = set(SubjectMeta.__dataclass_fields__)
    try:
        meta = SubjectMeta(**{k: v for k, v in raw.items() if k in known})
    except TypeError as exc:
        raise SubjectError(f"{path} lacks a required field: {exc}") from exc
    return migrate_meta(meta)


def migrate_meta(meta: SubjectMeta) -> SubjectMeta:
    """``meta`` brought to the current format in memory (the file is left as it is).

    Version 1 → 2: a video ``source`` gains ``crop_affine`` (source pixels → subject pixels)
    from its legacy ``crop`` [x0, y0, side]; its ``file_bytes`` and ``file_hash`` stay unknown
    (absent), which the export's source framing checks (core/framing.py).
    """
    if meta.version < 2:
        source = dict(meta.source or {})
        crop = source.get("crop")
        if source.get("kind") == "video" and "crop_affine" not in source and crop:
            from .paste_back import crop_affine

            x0, y0, side = (float(v) for v in crop)
            source["crop_affine"] = crop_affine(x0, y0, side, meta.size).tolist()
        source["migrated_from_version"] = meta.version
        meta.source = source
        meta.version = FORMAT_VERSION
    return meta


def write_meta(root: Path, meta: SubjectMeta) -> None:
    atomic.write_json(Path(root) / "subject.json", asdict(meta))


def create(root: str | Path, meta: SubjectMeta) -> Subject:
    """Start a new subject folder at ``root`` (made if needed) and write its ``subject.json``."""
    root = Path(root)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    write_meta(root, meta)
    return Subject(root, meta)


# -- tracks.npz ----------------------------------------------------------------------------------
def read_tracks(path: Path) -> Tracks:
    if not path.is_file():
        raise SubjectError(f"{path} is missing; the subject has no tracks")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise SubjectError(f"{path} cannot be read ({exc}); the file is damaged") from exc
    missing = [k for k in TRACK_KEYS if k not in arrays]
    if missing:
        raise SubjectError(f"{path} lacks the arrays {missing}")
    return Tracks(**{k: arrays[k] for k in TRACK_KEYS})


def check_tracks(tracks: Tracks, frames: int) -> list[str]:
    """Shape and dtype problems of ``tracks`` for a subject of ``frames`` frames."""
    problems = []
    for key, (shape, kind) in TRACK_KEYS.items():
        arr = np.asarray(getattr(tracks, key))
        want = tuple(frames if s == "T" else s for s in shape)
        if arr.shape != want:
            problems.append(f"tracks.npz[{key!r}] has shape {arr.shape}, expected {want}")
        elif arr.dtype.kind != kind:
            problems.append(f"tracks.npz[{key!r}] has dtype {arr.dtype}, expected kind {kind!r}")
        elif kind == "f" and not np.all(np.isfinite(arr)):
            problems.append(f"tracks.npz[{key!r}] contains NaN or infinite values")
    return problems


# -- validation ----------------------------------------------------------------------------------
def validate_subject(root: str | Path, meta: SubjectMeta | None = None) -> list[str]:
    """Every problem found in the subject folder ``root``; an empty list means valid."""
    root = Path(root)
    try:
        meta = meta or read_meta(root)
    except SubjectError as exc:
        return [str(exc)]
    problems: list[str] = []
    t = meta.num_frames
    if t < 1:
        problems.append("subject.json: num_frames must be at least 1")
    if meta.fps != FPS or meta.sample_rate != SAMPLE_RATE:
        problems.append(f"subject.json: fps/sample_rate must be {FPS}/{SAMPLE_RATE}")
    if np.asarray(meta.intrinsics).shape != (3, 3):
        problems.append("subject.json: intrinsics must be a 3x3 matrix")
    if np.asarray(meta.head_bbox).shape != (2, 3):
        problems.append("subject.json: head_bbox must be [[xmin, ymin, zmin], [xmax, ymax, zmax]]")
    if not 0 < meta.train_frames <= t:
        problems.append(f"subject.json: train_frames {meta.train_frames} outside 1..{t}")
    if meta.frame_ext not in (".jpg", ".png"):
        problems.append(f"subject.json: frame_ext {meta.frame_ext!r} must be '.jpg' or '.png'")
    subject = Subject(root, meta)
    for label, path_of in (("frame", subject.frame_path), ("mask", subject.mask_path)):
        missing = [i for i in range(t) if not path_of(i).is_file()]
        if missing:
            problems.append(f"{len(missing)} {label} file(s) missing, first {path_of(missing[0])}")
    if not subject.background_path.is_file():
        problems.append(f"{subject.background_path} is missing")
    try:
        problems += check_tracks(read_tracks(root / "tracks.npz"), t)
    except SubjectError as exc:
        problems.append(str(exc))
    if meta.has_audio:
        problems += _check_audio(subject.audio_path, t)
    for part in MODEL_PARTS:
        d = subject.model_dir(part)
        if (d / "model.safetensors").exists() != (d / "config.json").exists():
            problems.append(f"{d}: a model needs both model.safetensors and config.json")
    return problems


def _check_audio(path: Path, frames: int) -> list[str]:
    if not path.is_file():
        return [f"{path} is missing (subject.json says the subject has audio)"]
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except RuntimeError as exc:
        return [f"{path} cannot be read: {exc}"]
    if info.samplerate != SAMPLE_RATE:
        return [f"{path} is {info.samplerate} Hz; subjects store {SAMPLE_RATE} Hz"]
    if abs(num_frames(info.frames) - frames) > 1:
        return [f"{path} covers {num_frames(info.frames)} frames but the subject has {frames}"]
    return []


# -- images --------------------------------------------------------------------------------------
def _read_image(path: Path, color: bool) -> np.ndarray:
    import cv2

    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED
    img = cv2.imread(str(path), flag)
    if img is None:
        raise SubjectError(f"{path} is missing or not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if color else img


def _write_image(path: Path, img: np.ndarray) -> None:
    import cv2

    arr = np.ascontiguousarray(img)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else []
    ok, buf = cv2.imencode(path.suffix, arr, params)
    if not ok:
        raise SubjectError(f"could not encode image for {path}")
    atomic.write_bytes(path, buf.tobytes())
