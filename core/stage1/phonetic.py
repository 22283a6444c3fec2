"""The ``phonetic`` audio front end: phones from PocketSphinx's phone loop, as viseme rows per frame.

PocketSphinx (the wheel ships its US-English acoustic model and phone language model; nothing
is downloaded) decodes the audio with *allphone* search: any phone may follow any other,
weighted by the phone trigram model ``en-us-phone.lm.bin``, no words and no dictionary. Its
phones (with times) are grouped into :data:`VISEMES` mouth-shape classes, and every video frame
(docs/design.md "Time": frame ``i`` covers samples ``[640 i, 640 (i + 1))``, ``ceil(S / 640)``
frames) gets a row of :data:`PHONETIC_DIM` values:

- ``[0, V)``: the fraction of the frame each viseme class covers (sums to 1; class 0 is silence,
  and audio the decoder did not cover counts as silence);
- ``[V, 5 V)``: the same for frames ``i - 2``, ``i - 1``, ``i + 1``, ``i + 2`` (silence outside
  the clip): the coarticulation context;
- ``5 V``: the fraction of the frame inside a pause of at least :data:`LONG_PAUSE` seconds (the
  mouth should close there);
- ``5 V + 1``: the distance from the frame's centre to the nearest speech, in units of
  :data:`LONG_PAUSE`, at most 1 (0 inside speech);
- ``5 V + 2``: where the frame's centre lies inside its phone (0 at the start, 1 at the end; 0
  in silence).

The rows do not depend on the speaker's voice beyond what the decoder hears. Other languages
pass through the English phone loop and come out as the nearest English phones.

Decoding is deterministic: the audio is brought to a fixed level and a fixed, seeded noise floor
far below speech is added (digital silence throws the decoder's noise and cepstral-mean
estimates off and it then hallucinates phones in the speech). Results are cached per audio
content (:data:`CACHE_SIZE` clips).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..atomic import atomic_open
from ..errors import MediaError
from ..timing import SAMPLE_RATE, SAMPLES_PER_FRAME

VISEMES: tuple[str, ...] = (
    "sil",  # silence and non-speech noise
    "PBM",  # lips pressed together
    "FV",  # lower lip on the upper teeth
    "TH",  # tongue between the teeth
    "TDNL",  # tongue on the ridge, jaw a little open
    "KG",  # back of the tongue, jaw half open
    "SZ",  # teeth together, lips spread
    "SH",  # lips pushed forward
    "R",  # lips slightly rounded
    "W",  # lips rounded and narrow
    "O",  # lips rounded, jaw open
    "A",  # jaw wide open
    "E",  # jaw half open, lips spread
    "I",  # jaw nearly closed, lips spread
)
"""Mouth-shape classes, silence first."""

PHONE_TO_VISEME: dict[str, str] = {
    **dict.fromkeys(("SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+NOISE+"), "sil"),
    **dict.fromkeys(("P", "B", "M"), "PBM"),
    **dict.fromkeys(("F", "V"), "FV"),
    **dict.fromkeys(("TH", "DH"), "TH"),
    **dict.fromkeys(("T", "D", "N", "L"), "TDNL"),
    **dict.fromkeys(("K", "G", "NG", "HH"), "KG"),
    **dict.fromkeys(("S", "Z"), "SZ"),
    **dict.fromkeys(("SH", "ZH", "CH", "JH"), "SH"),
    **dict.fromkeys(("R", "ER"), "R"),
    **dict.fromkeys(("W", "UW", "UH"), "W"),
    **dict.fromkeys(("OW", "OY", "AO"), "O"),
    **dict.fromkeys(("AA", "AH", "AW", "AY"), "A"),
    **dict.fromkeys(("EH", "AE", "EY"), "E"),
    **dict.fromkeys(("IY", "IH", "Y"), "I"),
}
"""The decoder's phones (CMU ARPAbet and its filler phones) → their viseme class. A phone not
listed (a newer model's filler) counts as silence."""

NUM_VISEMES = len(VISEMES)
CONTEXT = (-2, -1, 1, 2)
"""Frame offsets whose viseme coverage is appended to each row."""
PHONETIC_DIM = NUM_VISEMES * (1 + len(CONTEXT)) + 3
"""Values per frame of :func:`phonetic_features`."""
LONG_PAUSE = 0.3
"""Seconds of silence from which a pause counts as one where the mouth closes."""

DECODER_SETTINGS: dict[str, Any] = {"lw": 2.0, "lm_order": 2, "topn": 1}
"""PocketSphinx settings besides the model, plus ``lm_order`` (ours: the phone model cut to its
bigrams, :func:`write_phone_lm`; 3 keeps the wheel's trigrams). A phone-model weight of 2
(default 6.5) lets the acoustics speak louder than the phone statistics: more speech frames get
the right viseme and closed lips are told apart better. Bigrams instead of trigrams and one
Gaussian per codebook instead of four (``topn``) decode 1.7× faster (about 37× real time on one
thread instead of 21×) with as many speech frames on the right viseme (English espeak-ng
sentences: median 0.66, 0.63 with :data:`REFERENCE_SETTINGS`), silences found as well, and the
same cross-speaker lip sync. Scoring every second frame (``ds=2``) loses silences, a narrower
phone-exit beam (``pbeam``) sticks in one phone for seconds (docs/phonetic.md)."""
REFERENCE_SETTINGS: dict[str, Any] = {"lw": 2.0}
"""The slower setting the speed one is measured against (``benchmarks phonetic``): full phone
trigrams and PocketSphinx's four Gaussians per codebook."""
DECODER_HOP = 160
"""Samples per decoder frame (100 per second)."""
DECODER_OFFSET = 125
"""Sample at which decoder frame 0's span starts: its 410-sample window is centred on 205, and
a frame stands for the 160 samples around its centre."""
LEVEL = 0.1
"""RMS the loud frames of a clip are scaled to before decoding."""
NOISE_FLOOR = 2e-3
"""Std of the seeded noise added before decoding, 34 dB below :data:`LEVEL`: far below speech,
above the digital silence of synthetic and edited clips, on which the phone loop gets lost."""
CACHE_SIZE = 32
"""Decoded clips kept in memory, keyed by their content."""

_SIL = 0
_INDEX = {name: i for i, name in enumerate(VISEMES)}


@dataclass(frozen=True)
class PhoneSegment:
    """One decoded phone: its ARPAbet symbol and its span in seconds ``[start, end)``."""

    phone: str
    start: float
    end: float

    @property
    def viseme(self) -> int:
        """Index into :data:`VISEMES`."""
        return _INDEX[PHONE_TO_VISEME.get(self.phone, "sil")]

    @property
    def is_silence(self) -> bool:
        return self.viseme == _SIL


def model_paths() -> tuple[str, str]:
    """The acoustic model folder and the phone language model shipped in the pocketsphinx wheel.

    Raises :class:`MediaError` when pocketsphinx (or its model files) is missing.
    """
    try:
        import pocketsphinx
    except ImportError as exc:
        raise MediaError(
            "the phonetic audio front end needs the 'pocketsphinx' package; reinstall Talkstudio "
            "(bash build_scripts/install.sh) or choose the 'mel' audio features"
        ) from exc
    root = os.path.join(pocketsphinx.get_model_path(), "en-us")
    hmm, lm = os.path.join(root, "en-us"), os.path.join(root, "en-us-phone.lm.bin")
    for path in (os.path.join(hmm, "mdef"), lm):
        if not os.path.isfile(path):
            raise MediaError(
                f"pocketsphinx's US-English model file {path} is missing; reinstall pocketsphinx"
            )
    return hmm, lm


def decode_utterance(dec: Any, pcm: np.ndarray) -> tuple[PhoneSegment, ...]:
    """Run PocketSphinx decoder ``dec`` over int16 ``pcm`` as one utterance (its noise estimate
    reset first, so nothing carries over from the previous clip); the segments of its best
    path, timed in seconds."""
    dec.reinit_feat()
    dec.start_utt()
    dec.process_raw(pcm.tobytes(), full_utt=True)
    dec.end_utt()
    return tuple(
        PhoneSegment(
            str(s.word),
            (DECODER_OFFSET + DECODER_HOP * s.start_frame) / SAMPLE_RATE,
            (DECODER_OFFSET + DECODER_HOP * (s.end_frame + 1)) / SAMPLE_RATE,
        )
        for s in dec.seg() or ()  # None when the clip is shorter than a window
        if s.end_frame >= s.start_frame
    )


class _Decoder:
    """One PocketSphinx allphone decoder per process, used under a lock (it is not re-entrant)."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _decoder: ClassVar[Any] = None
    _settings: ClassVar[str] = ""
    _cache: ClassVar[OrderedDict[str, tuple[PhoneSegment, ...]]] = OrderedDict()

    @classmethod
    def decode(cls, pcm: np.ndarray) -> tuple[PhoneSegment, ...]:
        """Phones of int16 16 kHz ``pcm`` [S], decoded as one utterance."""
        settings = repr(sorted(DECODER_SETTINGS.items()))  # a benchmark may try others
        key = hashlib.sha1(pcm.tobytes() + settings.encode()).hexdigest()
        with cls._lock:
            hit = cls._cache.get(key)
            if hit is not None:
                cls._cache.move_to_end(key)
                return hit
            if cls._decoder is None or cls._settings != settings:
                cls._decoder = _new_decoder(dict(DECODER_SETTINGS))
                cls._settings = settings
            dec = cls._decoder
            segs = decode_utterance(dec, pcm)
            cls._cache[key] = segs
            while len(cls._cache) > CACHE_SIZE:
                cls._cache.popitem(last=False)
            return segs


def _new_decoder(settings: dict[str, Any]) -> Any:
    """A PocketSphinx allphone decoder with ``settings`` (``lm_order`` is ours, see
    :data:`DECODER_SETTINGS`; the rest are PocketSphinx's)."""
    from pocketsphinx import Decoder

    hmm, lm = model_paths()
    order = int(settings.pop("lm_order", 3))
    if order >= 3:
        return Decoder(hmm=hmm, allphone=lm, dict=None, loglevel="FATAL", **settings)
    with tempfile.TemporaryDirectory(prefix="talkstudio_phones_") as tmp:
        path = os.path.join(tmp, f"phone-{order}gram.arpa")
        write_phone_lm(path, order)
        return Decoder(hmm=hmm, allphone=path, dict=None, loglevel="FATAL", **settings)


def write_phone_lm(path: str, order: int) -> None:
    """The wheel's phone trigram model cut to its 1-grams (``order`` 1) or up to its 2-grams
    (``order`` 2), as an ARPA file at ``path``: the same probabilities, without the longer
    contexts (the highest order kept loses its back-off weights, which only longer ones use)."""
    from pocketsphinx import Config, LogMath, NGramModel

    if order not in (1, 2):
        raise ValueError(f"a phone language model of order {order}: choose 1, 2 or 3")
    with tempfile.TemporaryDirectory(prefix="talkstudio_phones_") as tmp:
        full = os.path.join(tmp, "phone.arpa")
        logmath = LogMath()  # held here: the model reads its scores through it when writing
        NGramModel(Config(), logmath, model_paths()[1]).write(full, NGramModel.str_to_type("arpa"))
        with open(full, encoding="utf-8") as f:
            lines = f.read().splitlines()
    kept: list[str] = []
    n = 0  # order of the section being read; 0 in the header and after \\end\\
    for line in lines:
        if line.startswith("\\") and line.endswith("-grams:"):
            n = int(line[1:].split("-")[0])
        elif line == "\\end\\":
            n = 0
        elif n == 0 and line.startswith("ngram ") and int(line[6:].split("=")[0]) > order:
            continue
        if n > order:
            continue
        if n == order and line.strip() and not line.startswith("\\"):
            line = "\t".join(line.split()[: 1 + n])  # probability and phones, no back-off
        kept.append(line)
    with atomic_open(path) as f:
        f.write(("\n".join(kept) + "\n").encode("utf-8"))


def clear_cache() -> None:
    """Forget the decoded clips (benchmarks time the decoding itself)."""
    with _Decoder._lock:
        _Decoder._cache.clear()


def decoder_input(audio: np.ndarray) -> np.ndarray:
    """Mono 16 kHz float ``audio`` [S] at :data:`LEVEL` plus the noise floor, as int16 [S]."""
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim != 1:
        raise MediaError(f"phonetic features need mono audio [samples], got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise MediaError("the audio contains NaN or infinite samples; re-export the file")
    frames = len(a) // SAMPLES_PER_FRAME
    if frames:
        rms = np.sqrt(np.mean(a[: frames * SAMPLES_PER_FRAME].reshape(frames, -1) ** 2, axis=1))
    else:
        rms = np.sqrt(np.mean(a**2, keepdims=True))
    level = float(np.percentile(rms, 90))
    if level > 1e-6:
        a = a * min(LEVEL / level, 1e3)
    noise = np.random.default_rng(len(a)).standard_normal(len(a)) * NOISE_FLOOR
    return (np.clip(a + noise, -1.0, 1.0) * 32767.0).astype(np.int16)


def phone_segments(audio_16k: np.ndarray) -> list[PhoneSegment]:
    """The phones of mono 16 kHz ``audio_16k`` [S] (float, any level), in time order.

    Consecutive segments tile ``[0.0078, ~S / 16000)`` seconds; spans are multiples of 10 ms.
    Empty audio gives no segments. Repeated calls on the same samples come from a cache.
    """
    if len(audio_16k) == 0:
        return []
    return list(_Decoder.decode(decoder_input(audio_16k)))


def viseme_coverage(segments: list[PhoneSegment], frames: int) -> np.ndarray:
    """Fraction of each frame [frames, NUM_VISEMES] each viseme class covers (rows sum to 1)."""
    cover = np.zeros((frames, NUM_VISEMES))
    frame_s = SAMPLES_PER_FRAME / SAMPLE_RATE
    covered = np.zeros(frames)
    for seg in segments:
        lo, hi = seg.start / frame_s, min(seg.end / frame_s, frames)
        first, last = int(np.floor(lo)), int(np.ceil(hi))
        for i in range(max(0, first), min(frames, last)):
            part = min(hi, i + 1) - max(lo, i)
            if part > 0:
                cover[i, seg.viseme] += part
                covered[i] += part
    cover[:, _SIL] += np.clip(1.0 - covered, 0.0, None)
    return cover / cover.sum(axis=1, keepdims=True)


def _silence_channels(segments: list[PhoneSegment], frames: int) -> np.ndarray:
    """[frames, 3]: long-pause fraction, distance to speech / LONG_PAUSE, position in the phone."""
    frame_s = SAMPLES_PER_FRAME / SAMPLE_RATE
    centres = (np.arange(frames) + 0.5) * frame_s
    speech = [(s.start, s.end) for s in segments if not s.is_silence]
    # Silent runs: merged neighbouring silence segments plus the uncovered ends of the clip.
    end = max(frames * frame_s, segments[-1].end if segments else 0.0)
    pauses, t = [], 0.0
    for lo, hi in speech:
        if lo > t:
            pauses.append((t, lo))
        t = max(t, hi)
    if t < end:
        pauses.append((t, end))
    out = np.zeros((frames, 3))
    for lo, hi in pauses:
        if hi - lo < LONG_PAUSE:
            continue
        a, b = lo / frame_s, hi / frame_s
        for i in range(max(0, int(a)), min(frames, int(np.ceil(b)))):
            out[i, 0] += max(0.0, min(b, i + 1) - max(a, i))
    if speech:
        starts = np.array([s for s, _ in speech])
        ends = np.array([e for _, e in speech])
        inside = (centres[:, None] >= starts) & (centres[:, None] < ends)  # [frames, P]
        gap = np.maximum(starts[None] - centres[:, None], centres[:, None] - ends[None])
        dist = np.where(inside, 0.0, np.maximum(gap, 0.0)).min(axis=1)
        out[:, 1] = np.minimum(dist / LONG_PAUSE, 1.0)
        for k, (lo, hi) in enumerate(speech):
            sel = inside[:, k]
            out[sel, 2] = (centres[sel] - lo) / max(hi - lo, 1e-9)
    else:
        out[:, 1] = 1.0
    return out


def features_from_segments(
    segments: list[PhoneSegment], frames: int, cover: np.ndarray | None = None
) -> np.ndarray:
    """Rows float32 [frames, PHONETIC_DIM] (layout in the module docstring) of decoded phones.

    ``cover`` [frames, NUM_VISEMES] replaces the segments' viseme fractions (the soft ones of
    :mod:`.phone_lattice`); the pause channels always come from ``segments``.
    """
    if frames <= 0:
        return np.zeros((0, PHONETIC_DIM), np.float32)
    cover = viseme_coverage(segments, frames) if cover is None else cover  # [T, V]
    pad = max(abs(c) for c in CONTEXT)
    silent = np.zeros((pad, NUM_VISEMES))
    silent[:, _SIL] = 1.0
    padded = np.concatenate([silent, cover, silent])  # [T + 2 pad, V]
    parts = [cover] + [padded[pad + c : pad + c + frames] for c in CONTEXT]
    parts.append(_silence_channels(segments, frames))
    return np.concatenate(parts, axis=1).astype(np.float32)


def phonetic_features(
    audio_16k: np.ndarray, frames: int | None = None, lattice_scale: float = 0.0
) -> np.ndarray:
    """Phonetic rows float32 [frames, PHONETIC_DIM] of mono 16 kHz ``audio_16k`` [S].

    ``frames`` defaults to ``ceil(S / 640)``; more frames than the audio covers are silence.
    ``lattice_scale`` > 0 makes the viseme fractions phone posteriors from a phone lattice at
    that acoustic scale (:func:`.phone_lattice.lattice_features`; another decoder); 0 gives the
    phone loop's best path, as one-hot fractions.
    """
    n = -(-len(audio_16k) // SAMPLES_PER_FRAME) if frames is None else int(frames)
    if lattice_scale > 0:
        from .phone_lattice import lattice_features

        return lattice_features(audio_16k, n, lattice_scale)
    return features_from_segments(phone_segments(audio_16k), n)


def speech_mask(features: np.ndarray) -> np.ndarray:
    """Frames [T] of :func:`phonetic_features` rows mostly covered by speech (not silence)."""
    return np.asarray(features[:, _SIL] < 0.5)
