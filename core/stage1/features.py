"""E_aud's fixed part: driving audio → per-frame features aligned to 25 fps (docs/design.md "Time").

Every feature row ``i`` describes audio frame ``i`` = samples ``[640 i, 640 (i + 1))``; a clip of
``S`` samples gives ``ceil(S / 640)`` rows, the last frame padded with silence.

- ``mel``: log-mel spectrogram, 25 ms Hann windows every 10 ms centred at ``160 j + 80``, so
  frame ``i`` owns the 4 mel frames ``4 i .. 4 i + 3``; a row is those 4 spectra side by side.
- ``wav2vec2``: frozen wav2vec2 hidden states interpolated to the frames (:mod:`.wav2vec2`).
- ``phonetic``: viseme classes of the phones PocketSphinx decodes, with context and pauses
  (:mod:`.phonetic`; with ``phone_lattice_scale`` > 0 the classes' posteriors from a phone
  lattice, :mod:`.phone_lattice`); ``mel+phonetic``: the log-mel row, then the phonetic row.
- With ``ppg_scale`` > 0, any of them is followed by 42 phone posteriors scored by PocketSphinx's
  acoustic model frame by frame (:mod:`.ppg`).
- All append the 6 LPC formant features (:mod:`.formants`) when ``use_formants``.

The trainable rest of E_aud is :class:`~.encoder.AudioEncoder`.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch

from ..errors import CheckpointError, MediaError
from ..timing import SAMPLE_RATE, SAMPLES_PER_FRAME, num_frames
from .config import Stage1Config
from .formants import NUM_FORMANT_FEATURES, formant_features
from .phonetic import PHONETIC_DIM, model_paths, phonetic_features
from .ppg import PPG_DIM, ppg_features
from .wav2vec2 import load_wav2vec2, wav2vec2_features

MEL_HOP, MEL_WIN = 160, 400
MELS_PER_FRAME = SAMPLES_PER_FRAME // MEL_HOP  # 4
MEL_FLOOR = 1e-4
LOUDNESS_TARGET = 0.1
"""RMS that the loud (90th-percentile) 40 ms frames of a clip are scaled to."""
SILENCE_RMS = 1e-4
"""Below this 90th-percentile frame RMS a clip is treated as silence and left as it is."""
MAX_GAIN = 30.0
FEATURE_STD_FLOOR = 1e-3
"""Smallest std a feature column is normalised by."""
PHONETIC_STD_FLOOR = 0.1
"""Smallest std of a phonetic column (values in [0, 1]): a viseme class that a short training
clip lacks has std 0 there, and a driving clip that has it would reach the network 1000× too
large with the general floor."""


def prepare_audio(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Driving audio as mono float32 [S] at 16 kHz in [-1, 1].

    Accepts [S] or [S, C] / [C, S] arrays (channels = the shorter axis, averaged) at any rate
    (polyphase resampling). Empty or non-finite audio raises :class:`MediaError`.
    """
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 2:
        a = a.mean(axis=int(np.argmin(a.shape)))
    elif a.ndim != 1:
        raise MediaError(f"audio must be [samples] or [samples, channels], got shape {a.shape}")
    if a.size == 0:
        raise MediaError("the audio has no samples; choose a clip with speech in it")
    if not np.all(np.isfinite(a)):
        raise MediaError("the audio contains NaN or infinite samples; re-export the file")
    if sample_rate <= 0:
        raise MediaError(f"invalid sample rate {sample_rate}")
    if sample_rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(SAMPLE_RATE, int(sample_rate))
        a = resample_poly(a, SAMPLE_RATE // g, int(sample_rate) // g)
    return np.clip(a, -1.0, 1.0).astype(np.float32)


def load_driving_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Any audio or video file (any rate, any channels) as mono float32 16 kHz [S]."""
    from ..media import load_audio

    return prepare_audio(load_audio(path, sample_rate=SAMPLE_RATE))


def loudness_gain(audio: np.ndarray) -> float:
    """The gain that brings the loud 40 ms frames of ``audio`` [S] to RMS :data:`LOUDNESS_TARGET`.

    The level is the 90th percentile of the frame RMS, so pauses do not count; silence (and
    clips quieter than :data:`SILENCE_RMS`) gets gain 1; the gain is at most :data:`MAX_GAIN`.
    """
    frames = max(1, len(audio) // SAMPLES_PER_FRAME)
    seg = audio[: frames * SAMPLES_PER_FRAME]
    if len(seg) < SAMPLES_PER_FRAME:
        seg = audio
        frames = 1
    rms = np.sqrt(np.mean(seg.reshape(frames, -1).astype(np.float64) ** 2, axis=1))
    level = float(np.percentile(rms, 90))
    if level < SILENCE_RMS:
        return 1.0
    return min(LOUDNESS_TARGET / level, MAX_GAIN)


def normalize_loudness(audio: np.ndarray, gain: float | None = None) -> np.ndarray:
    """``audio`` [S] times ``gain`` (default :func:`loudness_gain` of itself), clipped to ±1."""
    g = loudness_gain(audio) if gain is None else gain
    return np.clip(audio * g, -1.0, 1.0).astype(np.float32)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((m - 15.0) * (np.log(6.4) / 27.0))
    return np.where(m >= 15.0, log, lin)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int) -> torch.Tensor:
    """Triangular mel filters [n_mels, MEL_WIN // 2 + 1] over 0–8 kHz, area-normalised."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, MEL_WIN // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), n_mels + 2)
    )
    lower = (fft_freqs[None] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    upper = (edges[2:, None] - fft_freqs[None]) / np.diff(edges)[1:, None]
    w = np.maximum(0.0, np.minimum(lower, upper))
    w *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(w.astype(np.float32))


def log_mel(audio: np.ndarray, frames: int, n_mels: int) -> np.ndarray:
    """Log-mel rows [frames, 4 * n_mels]: the 4 spectra of each video frame, oldest first."""
    total = frames * SAMPLES_PER_FRAME
    pad = (MEL_WIN - MEL_HOP) // 2  # 120: mel frame j is centred on sample 160 j + 80
    x = torch.zeros(total + 2 * pad)
    n = min(total, len(audio))
    x[pad : pad + n] = torch.from_numpy(np.asarray(audio[:n], dtype=np.float32))
    spec = torch.stft(
        x,
        n_fft=MEL_WIN,
        hop_length=MEL_HOP,
        window=torch.hann_window(MEL_WIN),
        center=False,
        return_complex=True,
    )  # [201, 4 * frames]
    power = spec.real**2 + spec.imag**2
    mel = torch.log10(mel_filters(n_mels) @ power + MEL_FLOOR)  # [n_mels, 4 * frames]
    return mel.T.reshape(frames, MELS_PER_FRAME * n_mels).numpy()


def log_mel_with_gain(rows: torch.Tensor, n_mels: int, gain_db: torch.Tensor) -> torch.Tensor:
    """Front-end ``rows`` [..., in_dim] as if the audio had been ``gain_db`` [...] louder.

    Exact for the log-mel part (the first ``4 * n_mels`` values: ``log10(P + floor)`` becomes
    ``log10(g² P + floor)``); the formants do not depend on the gain. Used to make training
    robust to the level a driving clip is normalised to.
    """
    m = MELS_PER_FRAME * n_mels
    power = (torch.pow(10.0, rows[..., :m]) - MEL_FLOOR).clamp_min(0.0)
    scaled = torch.log10(power * torch.pow(10.0, gain_db / 10.0)[..., None] + MEL_FLOOR)
    return torch.cat([scaled, rows[..., m:]], dim=-1)


class AudioFrontEnd:
    """The fixed feature extractor a :class:`Stage1Config` asks for.

    With ``allow_fallback`` (training) a missing wav2vec2 falls back to ``mel`` after a warning;
    ``kind`` says what is used, and the trained model records it. Without it (loading a model
    that was trained on wav2vec2) missing weights raise :class:`CheckpointError`.
    """

    def __init__(self, config: Stage1Config, allow_fallback: bool = True) -> None:
        self.config = config
        self.kind = config.audio_features
        self._w2v = None
        if "phonetic" in self.kind:
            model_paths()  # a missing pocketsphinx is named now, not at the first clip
        if self.kind == "wav2vec2":
            self._w2v = load_wav2vec2(config.wav2vec2_path)
            if self._w2v is None:
                if not allow_fallback:
                    raise CheckpointError(
                        f"this stage-1 model was trained on wav2vec2 features from "
                        f"{config.wav2vec2_path!r}, which are not on this machine. Put those "
                        "weights there (or in the Hugging Face cache), or retrain with 'mel'."
                    )
                self.kind = "mel"

    @property
    def in_dim(self) -> int:
        """Width of a feature row."""
        extra = NUM_FORMANT_FEATURES if self.config.use_formants else 0
        extra += PPG_DIM if self.config.ppg_scale > 0 else 0
        if self._w2v is not None:
            return int(self._w2v.config.hidden_size) + extra
        if self.kind == "phonetic":
            return PHONETIC_DIM + extra
        if self.kind == "mel+phonetic":
            return MELS_PER_FRAME * self.config.n_mels + PHONETIC_DIM + extra
        return MELS_PER_FRAME * self.config.n_mels + extra

    def phonetic_columns(self) -> slice:
        """Where the phonetic block lies in a row (an empty slice without one)."""
        start = MELS_PER_FRAME * self.config.n_mels if self.kind == "mel+phonetic" else 0
        return slice(start, start + PHONETIC_DIM if "phonetic" in self.kind else start)

    def ppg_columns(self) -> slice:
        """Where the phone posteriors lie in a row (an empty slice without them): just before
        the formants."""
        stop = self.in_dim - (NUM_FORMANT_FEATURES if self.config.use_formants else 0)
        return slice(stop - PPG_DIM if self.config.ppg_scale > 0 else stop, stop)

    def feature_std(self, feats: np.ndarray) -> np.ndarray:
        """The std [in_dim] to normalise rows like ``feats`` [T, in_dim] by: their own, at least
        :data:`FEATURE_STD_FLOOR`, and at least :data:`PHONETIC_STD_FLOOR` on the phonetic block
        and the phone posteriors."""
        std = np.maximum(np.asarray(feats, np.float32).std(axis=0), FEATURE_STD_FLOOR)
        for cols in (self.phonetic_columns(), self.ppg_columns()):
            std[cols] = np.maximum(std[cols], PHONETIC_STD_FLOOR)
        return std.astype(np.float32)

    def __call__(self, audio: np.ndarray, gain: float | None = None) -> np.ndarray:
        """Features float32 [ceil(S / 640), in_dim] of mono 16 kHz ``audio`` [S].

        With ``normalize_loudness`` the clip is scaled by ``gain``, by default its own
        :func:`loudness_gain` (a part of a longer recording takes the recording's gain).
        """
        audio = prepare_audio(audio)
        frames = num_frames(len(audio))
        if self.config.normalize_loudness:
            audio = normalize_loudness(audio, gain)
        if self._w2v is not None:
            parts = [wav2vec2_features(self._w2v, audio, frames)]
        elif self.kind == "phonetic":
            parts = [phonetic_features(audio, frames, self.config.phone_lattice_scale)]
        else:
            parts = [log_mel(audio, frames, self.config.n_mels)]
            if self.kind == "mel+phonetic":
                parts.append(phonetic_features(audio, frames, self.config.phone_lattice_scale))
        if self.config.ppg_scale > 0:
            parts.append(ppg_features(audio, frames, self.config.ppg_scale))
        if self.config.use_formants:
            parts.append(formant_features(audio, frames))
        return np.concatenate(parts, axis=1).astype(np.float32)
