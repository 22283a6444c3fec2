"""Soft viseme fractions: phone posteriors from PocketSphinx's phone lattice (docs/prior.md).

The phone loop of :mod:`.phonetic` (allphone search) keeps only its best phone sequence, and it
builds no lattice. Here the same acoustic model and phone bigram model decode the clip with
PocketSphinx's word search instead, over a dictionary whose words are the single phones (the
phone bigram model is the word model): its forward pass keeps every phone that ends within
:data:`LATTICE_SETTINGS`' word beam of the best, and ``Decoder.get_lattice()`` makes a lattice
of them. It is written as HTK SLF (nodes: a phone and the time it starts; links: from a phone to
the next, with the first phone's acoustic log-likelihood ``a=`` in nats) and read back here.

A link's weight is ``scale * (a + lw * ln P(next | phone) + ln wip)`` (the bigram model with
its back-offs, ``lw`` and ``wip`` the decoder's language weight and word insertion penalty);
forward-backward over the links in log space gives each link's posterior, and a phone's
posterior is spread over the decoder frames it covers. Every path from the lattice's start to
its end covers every frame once, so the viseme posteriors of a frame sum to 1. ``scale`` is the
acoustic scale (``Stage1Config.phone_lattice_scale``): small values flatten the posteriors
towards the phone model, large ones sharpen them towards the best path.

Fillers (silence, breath, noise; the HTK file names them ``!NULL`` and an inner sentence start
``!SENT_START``) count as silence, and for the phone model as its ``SIL``. The best path of the
same search gives the phone segments of the pause channels, so a row keeps the layout of
:func:`~.phonetic.features_from_segments`. Decoding is deterministic and cached per clip like
the phone loop's; the posteriors of another scale reuse the decoded lattice.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..timing import SAMPLE_RATE, SAMPLES_PER_FRAME
from .phonetic import (
    CACHE_SIZE,
    DECODER_HOP,
    DECODER_OFFSET,
    NUM_VISEMES,
    PHONE_TO_VISEME,
    VISEMES,
    PhoneSegment,
    decode_utterance,
    decoder_input,
    features_from_segments,
    model_paths,
    write_phone_lm,
)

LATTICE_SETTINGS: dict[str, Any] = {
    "lw": 2.0,
    "topn": 1,
    "fwdflat": False,
    "bestpath": False,
    "wbeam": 1e-10,
}
"""PocketSphinx settings of the lattice search: the phone loop's language weight and one
Gaussian per codebook (:data:`~.phonetic.DECODER_SETTINGS`), the tree pass alone (its second,
flat pass halves the speed), and a word beam of 1e-10 (23 nats) for the phones kept at each
frame: PocketSphinx's 7e-29 makes lattices a hundred times larger (1.4 M links for 20 s) that
take longer to build than the decoding."""
WORD_PENALTY = 0.65
"""PocketSphinx's word insertion penalty (its default ``wip``), per phone in the link weight."""
FILLER = "SIL"
"""The phone model's word that fillers and inner sentence starts stand for."""

_SIL = 0
_INDEX = {name: i for i, name in enumerate(VISEMES)}


@dataclass(frozen=True)
class PhoneLattice:
    """A decoded lattice: node ``k`` is phone ``words[k]`` starting at decoder frame
    ``frames[k]``; link ``j`` goes from node ``src[j]`` to node ``dst[j]`` and carries the
    acoustic log-likelihood ``acoustic[j]`` (nats) of the source phone over frames
    ``[frames[src[j]], frames[dst[j]])``."""

    words: tuple[str, ...]  # [N]
    frames: np.ndarray  # [N] int
    src: np.ndarray  # [L] int
    dst: np.ndarray  # [L] int
    acoustic: np.ndarray  # [L] float
    start: int
    end: int
    n_frames: int
    """Decoder frames of the utterance; the end node's phone covers ``[frames[end], n_frames)``."""


def parse_slf(text: str, n_frames: int) -> PhoneLattice:
    """The lattice of HTK SLF ``text`` as PocketSphinx writes it (``I=`` node lines with ``t=``
    and ``W=``; ``J=`` link lines with ``S=``, ``E=`` and ``a=``), ``n_frames`` decoder frames."""
    header: dict[str, str] = {}
    nodes: dict[int, tuple[str, int]] = {}
    links: list[tuple[int, int, float]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "J" in fields:
            links.append((int(fields["S"]), int(fields["E"]), float(fields["a"])))
        elif "I" in fields:
            frame = round(float(fields["t"]) * (SAMPLE_RATE / DECODER_HOP))
            nodes[int(fields["I"])] = (fields.get("W", "!NULL"), frame)
        else:
            header.update(fields)
    if not nodes or "start" not in header or "end" not in header:
        raise ValueError("the lattice file has no nodes, or no start or end node")
    ids = sorted(nodes)
    index = {k: i for i, k in enumerate(ids)}
    arr = np.array(links, dtype=np.float64).reshape(-1, 3)
    return PhoneLattice(
        words=tuple(nodes[k][0] for k in ids),
        frames=np.array([nodes[k][1] for k in ids], dtype=np.int64),
        src=np.array([index[int(s)] for s in arr[:, 0]], dtype=np.int64),
        dst=np.array([index[int(e)] for e in arr[:, 1]], dtype=np.int64),
        acoustic=arr[:, 2].copy(),
        start=index[int(header["start"])],
        end=index[int(header["end"])],
        n_frames=int(n_frames),
    )


class PhoneBigrams:
    """ln P(phone | previous phone) of an ARPA phone model cut to its bigrams, with back-off."""

    def __init__(self, arpa_text: str) -> None:
        ln10 = math.log(10.0)
        self.unigram: dict[str, tuple[float, float]] = {}  # word -> (ln p, ln back-off)
        self.bigram: dict[tuple[str, str], float] = {}
        order = 0
        for line in arpa_text.splitlines():
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:].split("-")[0])
                continue
            parts = line.split()
            if order == 1 and len(parts) >= 2:
                bo = float(parts[2]) if len(parts) > 2 else 0.0
                self.unigram[parts[1]] = (float(parts[0]) * ln10, bo * ln10)
            elif order == 2 and len(parts) >= 3:
                self.bigram[(parts[1], parts[2])] = float(parts[0]) * ln10

    def word(self, lattice_word: str, first: bool, last: bool) -> str:
        """The phone model's word for a lattice node's word (fillers: :data:`FILLER`)."""
        if first:
            return "<s>"
        if last:
            return "</s>"
        return lattice_word if lattice_word in self.unigram else FILLER

    def score(self, prev: str, word: str) -> float:
        """ln P(``word`` | ``prev``)."""
        hit = self.bigram.get((prev, word))
        if hit is not None:
            return hit
        return self.unigram.get(prev, (0.0, 0.0))[1] + self.unigram[word][0]


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def link_posteriors(
    lattice: PhoneLattice, bigrams: PhoneBigrams, scale: float, lw: float
) -> np.ndarray:
    """Posterior [L] of every link: forward-backward in log space over the link weights
    ``scale * (acoustic + lw * ln P + ln WORD_PENALTY)``. Links off every complete path get 0."""
    n = len(lattice.words)
    names = [
        bigrams.word(w, k == lattice.start, k == lattice.end) for k, w in enumerate(lattice.words)
    ]
    lm = np.array(
        [bigrams.score(names[s], names[e]) for s, e in zip(lattice.src, lattice.dst, strict=True)]
    )
    weight = scale * (lattice.acoustic + lw * lm + math.log(WORD_PENALTY))  # [L]
    # A link ends later than it starts, so links ordered by their start frame are in
    # topological order forwards, and by their end frame (descending) backwards.
    src, dst = lattice.src.tolist(), lattice.dst.tolist()
    w = weight.tolist()
    forward = sorted(range(len(w)), key=lambda j: lattice.frames[src[j]])
    backward = sorted(range(len(w)), key=lambda j: -lattice.frames[dst[j]])
    alpha = [-math.inf] * n
    beta = [-math.inf] * n
    alpha[lattice.start] = 0.0
    beta[lattice.end] = 0.0
    for j in forward:
        if alpha[src[j]] > -math.inf:
            alpha[dst[j]] = _logaddexp(alpha[dst[j]], alpha[src[j]] + w[j])
    for j in backward:
        if beta[dst[j]] > -math.inf:
            beta[src[j]] = _logaddexp(beta[src[j]], beta[dst[j]] + w[j])
    total = alpha[lattice.end]
    if total == -math.inf:
        raise ValueError("the lattice has no path from its start to its end")
    log_post = np.array(alpha)[lattice.src] + weight + np.array(beta)[lattice.dst] - total
    return np.exp(np.minimum(log_post, 0.0))


def frame_posteriors(lattice: PhoneLattice, posteriors: np.ndarray) -> np.ndarray:
    """Viseme posteriors [n_frames, NUM_VISEMES] per decoder frame from the link ``posteriors``
    [L]: a link's posterior on each frame its source phone covers, the end node's phone on the
    frames after its start."""
    visemes = np.array(
        [_INDEX[PHONE_TO_VISEME.get(w, "sil")] for w in lattice.words], dtype=np.int64
    )
    n = lattice.n_frames
    diff = np.zeros((n + 1, NUM_VISEMES))
    lo = np.clip(lattice.frames[lattice.src], 0, n)
    hi = np.clip(lattice.frames[lattice.dst], 0, n)
    v = visemes[lattice.src]
    np.add.at(diff, (lo, v), posteriors)
    np.add.at(diff, (hi, v), -posteriors)
    end = min(int(lattice.frames[lattice.end]), n)
    diff[end, visemes[lattice.end]] += 1.0
    return np.cumsum(diff, axis=0)[:n].clip(0.0, None)


def video_frame_posteriors(decoder_post: np.ndarray, frames: int) -> np.ndarray:
    """Viseme fractions [frames, NUM_VISEMES] of video frames (rows sum to 1) from decoder-frame
    posteriors ``decoder_post`` [F, V]: decoder frame ``k`` stands for samples
    ``[160 k + 125, 160 (k + 1) + 125)``; audio it does not cover counts as silence."""
    cover = np.zeros((frames, NUM_VISEMES))
    k = np.arange(len(decoder_post))
    lo = (DECODER_OFFSET + DECODER_HOP * k) / SAMPLES_PER_FRAME  # in video frames
    hi = lo + DECODER_HOP / SAMPLES_PER_FRAME
    first = np.floor(lo).astype(np.int64)
    for i, part in ((first, np.minimum(hi, first + 1) - lo), (first + 1, hi - (first + 1))):
        ok = (i < frames) & (part > 0)
        np.add.at(cover, i[ok], decoder_post[ok] * part[ok, None])
    cover[:, _SIL] += np.clip(1.0 - cover.sum(axis=1), 0.0, None)
    return cover / cover.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class LatticeDecode:
    """What one clip's lattice search gives: the lattice and the best path's phones."""

    lattice: PhoneLattice
    segments: tuple[PhoneSegment, ...]


class _LatticeDecoder:
    """One PocketSphinx lattice decoder per process, used under a lock, with a cache."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _decoder: ClassVar[Any] = None
    _bigrams: ClassVar[PhoneBigrams | None] = None
    _cache: ClassVar[OrderedDict[str, LatticeDecode]] = OrderedDict()

    @classmethod
    def bigrams(cls) -> PhoneBigrams:
        with cls._lock:
            cls._ensure()
            assert cls._bigrams is not None
            return cls._bigrams

    @classmethod
    def _ensure(cls) -> None:
        if cls._decoder is not None:
            return
        from pocketsphinx import Decoder

        hmm, _ = model_paths()
        with tempfile.TemporaryDirectory(prefix="talkstudio_lattice_") as tmp:
            lm, dic = os.path.join(tmp, "phone-2gram.arpa"), os.path.join(tmp, "phones.dict")
            write_phone_lm(lm, 2)
            with open(lm, encoding="utf-8") as f:
                bigrams = PhoneBigrams(f.read())
            words = sorted(w for w in bigrams.unigram if not w.startswith("<"))
            with open(dic, "w", encoding="utf-8") as f:
                f.writelines(f"{w} {w}\n" for w in words)
            cls._decoder = Decoder(hmm=hmm, lm=lm, dict=dic, loglevel="FATAL", **LATTICE_SETTINGS)
        cls._bigrams = bigrams

    @classmethod
    def decode(cls, pcm: np.ndarray) -> LatticeDecode:
        """The lattice and best path of int16 16 kHz ``pcm`` [S], decoded as one utterance."""
        settings = repr(sorted(LATTICE_SETTINGS.items())).encode()
        key = hashlib.sha1(pcm.tobytes() + settings).hexdigest()
        with cls._lock:
            hit = cls._cache.get(key)
            if hit is not None:
                cls._cache.move_to_end(key)
                return hit
            cls._ensure()
            dec = cls._decoder
            segments = decode_utterance(dec, pcm)
            lat = dec.get_lattice()
            if lat is None:  # too short for a window
                lattice = _silent_lattice(int(dec.n_frames()))
            else:
                with tempfile.TemporaryDirectory(prefix="talkstudio_lattice_") as tmp:
                    path = os.path.join(tmp, "clip.slf")
                    lat.write_htk(path)
                    with open(path, encoding="utf-8") as f:
                        lattice = parse_slf(f.read(), int(dec.n_frames()))
            out = LatticeDecode(lattice, segments)
            cls._cache[key] = out
            while len(cls._cache) > CACHE_SIZE:
                cls._cache.popitem(last=False)
            return out


def _silent_lattice(n_frames: int) -> PhoneLattice:
    """A one-node lattice: silence throughout (a clip too short to decode)."""
    empty = np.zeros(0, dtype=np.int64)
    return PhoneLattice(
        ("!SENT_END",), np.zeros(1, np.int64), empty, empty, np.zeros(0), 0, 0, n_frames
    )


def clear_cache() -> None:
    """Forget the decoded lattices (benchmarks time the decoding itself)."""
    with _LatticeDecoder._lock:
        _LatticeDecoder._cache.clear()


def lattice_decode(audio_16k: np.ndarray) -> LatticeDecode:
    """The phone lattice and best path of mono 16 kHz float ``audio_16k`` [S] (non-empty),
    brought to the phone loop's level and noise floor first (:mod:`.phonetic`)."""
    return _LatticeDecoder.decode(decoder_input(audio_16k))


def viseme_posteriors(audio_16k: np.ndarray, frames: int, scale: float) -> np.ndarray:
    """Viseme posteriors [frames, NUM_VISEMES] of the video frames of ``audio_16k`` [S] at
    acoustic scale ``scale`` (rows sum to 1; frames past the audio are silence)."""
    if len(audio_16k) == 0:
        out = np.zeros((frames, NUM_VISEMES))
        out[:, _SIL] = 1.0
        return out
    lattice = lattice_decode(audio_16k).lattice
    post = link_posteriors(lattice, _LatticeDecoder.bigrams(), scale, LATTICE_SETTINGS["lw"])
    return video_frame_posteriors(frame_posteriors(lattice, post), frames)


def lattice_features(audio_16k: np.ndarray, frames: int, scale: float) -> np.ndarray:
    """Phonetic rows float32 [frames, PHONETIC_DIM] (the layout of
    :func:`~.phonetic.features_from_segments`) whose viseme fractions are the lattice's
    posteriors at acoustic scale ``scale``, and whose pause channels come from the best path."""
    if frames <= 0 or len(audio_16k) == 0:
        return features_from_segments([], max(frames, 0))
    decoded = lattice_decode(audio_16k)
    cover = viseme_posteriors(audio_16k, frames, scale)
    return features_from_segments(list(decoded.segments), frames, cover=cover)
