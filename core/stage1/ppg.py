"""Phone posteriors per frame from PocketSphinx's acoustic model itself: the ``ppg`` block of a
stage-1 row (a phonetic posteriorgram; ``Stage1Config.ppg_scale`` > 0 appends it).

The phone loop (:mod:`.phonetic`) keeps one decision per phone. This block keeps the acoustic
evidence for every phone, frame by frame, with no search and no language model: the model was
trained on many English speakers, so the scores depend on what was said more than on who said it.

The wheel's US-English model is a phonetically tied mixture: per base phone and feature stream
one codebook of 128 diagonal Gaussians; per senone (HMM state) and stream 128 mixture weights,
stored as bytes ``v`` with ``w = 1.0001^(-1024 v)``. Its three streams are 13 cepstra, their
deltas and their double deltas (``feat.params``: 25 mel filters over 130-6800 Hz, 410-sample
Hamming windows every 160 samples, pre-emphasis 0.97, DCT-II, lifter 22, the clip's mean
subtracted). The files are read with numpy (:class:`AcousticModel`); the front end is computed
here to that recipe, with the audio prepared as the phone loop hears it
(:func:`.phonetic.decoder_input`).

Per 10-ms frame, the log-likelihood of each of the 126 context-independent senones (42 base
phones × 3 states) is the sum over streams of log Σ_k w_k N(x; μ_k, σ_k²); a phone's score is the
log-sum-exp of its states, and a softmax over the 42 phones at ``scale`` gives posteriors. The
row of video frame ``i`` (docs/design.md "Time": samples ``[640 i, 640 (i + 1))``) is the mean
of the 10-ms frames whose window centres fall inside it; frames past the audio are silence.
"""

from __future__ import annotations

import os
import struct
import threading
from functools import cached_property

import numpy as np

from ..errors import MediaError
from ..timing import SAMPLES_PER_FRAME

NUM_PHONES = 42
"""Base phones of the US-English model (ARPAbet, plus SIL and two noise phones)."""
PPG_DIM = NUM_PHONES
CHUNK = 128
"""10-ms frames scored at a time."""
STATES = 3
"""Emitting states per phone."""
STREAMS = 3
CEPSTRA = 13
HOP = 160
"""Samples between 10-ms frames."""
WINDOW = 410
"""Samples per analysis window (25.625 ms)."""
FIRST_CENTRE = WINDOW // 2
"""Sample at the centre of frame 0's window."""
NFFT = 512
MEL_FILTERS = 25
LOWER_HZ, UPPER_HZ = 130.0, 6800.0
PRE_EMPHASIS = 0.97
LIFTER = 22
WEIGHT_UNIT = 1024.0 * np.log(1.0001)
"""Natural-log units of one step of a stored mixture-weight byte."""
VARIANCE_FLOOR = 1e-4
SILENCE = "SIL"


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """The acoustic model's mel scale (not the Slaney scale of the log-mel rows in .features)."""
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def _mel_bank(sample_rate: int = 16000) -> np.ndarray:  # [MEL_FILTERS, NFFT // 2 + 1]
    """Triangles equally spaced in mel between the model's band edges, each of unit area."""
    band = _hz_to_mel(np.array([LOWER_HZ, UPPER_HZ]))
    edges = _mel_to_hz(np.linspace(band[0], band[1], MEL_FILTERS + 2))
    freqs = np.arange(NFFT // 2 + 1) * sample_rate / NFFT
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise, fall = (freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)
    return np.clip(np.minimum(rise, fall), 0.0, None) * 2.0 / (hi - lo)


def _dct() -> np.ndarray:  # [CEPSTRA, MEL_FILTERS], orthonormal DCT-II rows, liftered
    i, j = np.arange(CEPSTRA)[:, None], np.arange(MEL_FILTERS)[None]
    basis = np.cos(np.pi * i * (j + 0.5) / MEL_FILTERS) * np.sqrt(2.0 / MEL_FILTERS)
    basis[0] = np.sqrt(1.0 / MEL_FILTERS)
    lifter = 1.0 + LIFTER / 2.0 * np.sin(np.pi * np.arange(CEPSTRA) / LIFTER)
    return basis * lifter[:, None]


def cepstra(pcm: np.ndarray) -> np.ndarray:
    """Liftered cepstra float64 [T, 13] of int16-scaled mono 16 kHz ``pcm`` [S], T = 10-ms frames
    whose window starts inside the audio (at least one)."""
    x = np.asarray(pcm, np.float64)
    x = np.concatenate([x[:1], x[1:] - PRE_EMPHASIS * x[:-1]])
    count = max(1, 1 + (len(x) - WINDOW) // HOP)
    need = (count - 1) * HOP + WINDOW
    x = np.pad(x, (0, max(0, need - len(x))))
    frames = np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::HOP][:count]
    power = np.abs(np.fft.rfft(frames * np.hamming(WINDOW), NFFT)) ** 2
    log_mel = np.log(np.maximum(power @ _MEL_BANK.T, 1e-5))
    return log_mel @ _DCT.T


def stream_features(pcm: np.ndarray) -> np.ndarray:
    """The model's three streams float32 [T, 3, 13]: cepstra less their clip mean, deltas
    c[t+2] − c[t−2] and double deltas of those (edges repeat the first and last frame)."""
    c = cepstra(pcm)
    c = c - c.mean(axis=0)
    t = len(c)
    p = np.pad(c, ((3, 3), (0, 0)), mode="edge")

    def at(k: int) -> np.ndarray:
        return p[3 + k : 3 + k + t]

    delta = at(2) - at(-2)
    double = (at(3) - at(-1)) - (at(1) - at(-3))
    return np.stack([c, delta, double], axis=1).astype(np.float32)


_MEL_BANK = _mel_bank()
_DCT = _dct()


def _read_s3(path: str) -> np.ndarray:
    """A float32 Gaussian parameter file: [codebooks, streams, densities, 13]."""
    data = _read(path)
    start = data.find(b"endhdr\n")
    if start < 0:
        raise MediaError(f"{path} is not a PocketSphinx parameter file; reinstall pocketsphinx")
    o = start + 7
    (magic,) = struct.unpack_from("<I", data, o)
    if magic != 0x11223344:
        raise MediaError(f"{path} has an unexpected byte order; reinstall pocketsphinx")
    books, streams, dens = struct.unpack_from("<3i", data, o + 4)
    lens = struct.unpack_from(f"<{streams}i", data, o + 16)
    (total,) = struct.unpack_from("<i", data, o + 16 + 4 * streams)
    if set(lens) != {CEPSTRA} or total != books * streams * dens * CEPSTRA:
        raise MediaError(f"{path}: streams of {lens} values, expected 3 × 13; not supported")
    values = np.frombuffer(data, "<f4", total, o + 20 + 4 * streams)
    return values.reshape(books, streams, dens, CEPSTRA).astype(np.float32)


def _skip_strings(data: bytes, o: int) -> int:
    """Past a header of length-prefixed strings ended by a zero length."""
    while True:
        (n,) = struct.unpack_from("<i", data, o)
        o += 4
        if n == 0:
            return o
        o += n


def _read_sendump(path: str, senones: int) -> np.ndarray:
    """Log mixture weights float32 [streams, densities, senones] of the first ``senones``."""
    data = _read(path)
    o = _skip_strings(data, 0)
    dens, total = struct.unpack_from("<2i", data, o)
    raw = np.frombuffer(data, np.uint8, STREAMS * dens * total, o + 8)
    raw = raw.reshape(STREAMS, dens, total)[:, :, :senones].astype(np.float64)
    logw = -raw * WEIGHT_UNIT
    top = logw.max(axis=1, keepdims=True)  # renormalised: the bytes are rounded
    logw -= top + np.log(np.exp(logw - top).sum(axis=1, keepdims=True))
    return logw.astype(np.float32)


def _read_phones(path: str) -> tuple[list[str], int]:
    """The base phone names of a binary ``mdef`` and its count of context-independent senones."""
    data = _read(path)
    if data[:4] != b"BMDF":
        raise MediaError(f"{path} is not a binary model definition; reinstall pocketsphinx")
    (text,) = struct.unpack_from("<i", data, 8)
    o = 12 + text
    n_ci, _, states, ci_senones = struct.unpack_from("<4i", data, o)
    names = data[o + 40 : o + 40 + 16 * n_ci].split(b"\0")[:n_ci]  # names are short
    if states != STATES or ci_senones != n_ci * STATES:
        raise MediaError(f"{path}: {states} states per phone; this reader needs {STATES}")
    return [n.decode("ascii") for n in names], ci_senones


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise MediaError(
            f"pocketsphinx's acoustic model file {path} cannot be read ({exc}); reinstall "
            "pocketsphinx"
        ) from exc


class AcousticModel:
    """The context-independent part of PocketSphinx's US-English acoustic model."""

    _shared: AcousticModel | None = None
    _lock = threading.Lock()

    def __init__(self, folder: str) -> None:
        try:  # a file cut short fails inside struct or numpy: named as damaged
            self.phones, senones = _read_phones(os.path.join(folder, "mdef"))
            means = _read_s3(os.path.join(folder, "means"))[:NUM_PHONES]
            var = _read_s3(os.path.join(folder, "variances"))[:NUM_PHONES]
            logw = _read_sendump(os.path.join(folder, "sendump"), senones)  # [S, K, 126]
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise MediaError(
                f"pocketsphinx's acoustic model in {folder} is damaged ({exc}); reinstall "
                "pocketsphinx"
            ) from exc
        if len(self.phones) != NUM_PHONES:
            raise MediaError(f"{folder}: {len(self.phones)} base phones, expected {NUM_PHONES}")
        var = np.maximum(var, VARIANCE_FLOOR)
        dens = means.shape[2]
        inv = 1.0 / var  # [42, S, K, 13]
        # log N(x) = −½ x²·inv + x·(μ inv) + const: per stream one matrix product of the rows
        # [x², x, 1] [T, 27] with [27, 42 K]
        const = -0.5 * (np.log(2.0 * np.pi * var) + means**2 * inv).sum(axis=-1)  # [42, S, K]
        self.gauss = [
            np.concatenate(
                [
                    (-0.5 * inv[:, s]).reshape(-1, CEPSTRA).T,
                    (means[:, s] * inv[:, s]).reshape(-1, CEPSTRA).T,
                    const[:, s].reshape(1, -1),
                ]
            ).astype(np.float32)
            for s in range(STREAMS)
        ]
        # senone 3 p + j is state j of phone p and mixes phone p's codebook
        w = np.exp(logw).reshape(STREAMS, dens, NUM_PHONES, STATES)
        self.weights = [w[s].transpose(1, 0, 2).astype(np.float32).copy() for s in range(STREAMS)]
        self.densities = dens

    @classmethod
    def shared(cls) -> AcousticModel:
        """The wheel's model, read once per process."""
        with cls._lock:
            if cls._shared is None:
                from .phonetic import model_paths

                cls._shared = cls(model_paths()[0])
            return cls._shared

    @cached_property
    def silence(self) -> int:
        return self.phones.index(SILENCE)

    def phone_scores(self, feats: np.ndarray) -> np.ndarray:
        """Log-likelihoods float32 [T, 42] of each phone (its states' log-sum-exp) for the
        streams ``feats`` [T, 3, 13], :data:`CHUNK` frames at a time (the densities of a chunk
        stay in the cache: three times faster than all frames at once)."""
        out = np.empty((len(feats), NUM_PHONES), np.float32)
        for start in range(0, len(feats), CHUNK):
            x = np.asarray(feats[start : start + CHUNK], np.float32)
            n = len(x)
            total = np.zeros((n, NUM_PHONES, STATES), np.float32)
            for s in range(STREAMS):
                xs = x[:, s]
                rows = np.concatenate([xs * xs, xs, np.ones((n, 1), np.float32)], axis=1)
                g = (rows @ self.gauss[s]).reshape(n, NUM_PHONES, self.densities)
                top = g.max(axis=-1, keepdims=True)
                np.exp(np.subtract(g, top, out=g), out=g)
                mix = np.matmul(g.transpose(1, 0, 2), self.weights[s])  # [42, n, 3]
                total += np.log(np.maximum(mix.transpose(1, 0, 2), 1e-30)) + top
            top = total.max(axis=-1, keepdims=True)
            out[start : start + n] = top[..., 0] + np.log(np.exp(total - top).sum(axis=-1))
        return out


def frame_posteriors(pcm: np.ndarray, scale: float, stride: int = 1) -> np.ndarray:
    """Phone posteriors float32 [ceil(T / stride), 42] of every ``stride``-th 10-ms frame of
    int16-scaled ``pcm`` [S]: softmax of ``scale`` × the phone scores."""
    model = AcousticModel.shared()
    z = model.phone_scores(stream_features(pcm)[::stride]) * np.float32(scale)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


STRIDES = (1, 2, 4)
"""Strides that leave every 40-ms video frame at least one scored 10-ms frame."""


def ppg_features(
    audio_16k: np.ndarray, frames: int | None, scale: float, stride: int = 1
) -> np.ndarray:
    """Rows float32 [frames, PPG_DIM] of mono 16 kHz ``audio_16k`` [S] (module docstring);
    ``frames`` defaults to ``ceil(S / 640)``. ``stride`` 2 or 4 scores only every second or
    fourth 10-ms frame (two or one per video frame): 2 or 4 times cheaper."""
    from .phonetic import decoder_input

    if stride not in STRIDES:
        raise ValueError(f"the posteriors' stride must be one of {STRIDES}, got {stride}")
    n = -(-len(audio_16k) // SAMPLES_PER_FRAME) if frames is None else int(frames)
    out = np.zeros((n, PPG_DIM), np.float32)
    if n == 0:
        return out
    out[:, AcousticModel.shared().silence] = 1.0
    if len(audio_16k) == 0:
        return out
    post = frame_posteriors(decoder_input(audio_16k), scale, stride)  # [T / stride, 42]
    video = (FIRST_CENTRE + HOP * stride * np.arange(len(post))) // SAMPLES_PER_FRAME
    keep = video < n
    sums = np.zeros((n, PPG_DIM), np.float64)
    np.add.at(sums, video[keep], post[keep])
    counts = np.bincount(video[keep], minlength=n)
    has = counts > 0
    out[has] = (sums[has] / counts[has, None]).astype(np.float32)
    return out
