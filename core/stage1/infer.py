"""Free-running (autoregressive) stage-1 inference over audio of any length.

Frame ``t`` is predicted from the audio and the model's *own* predictions of frames ``< t`` (the
first frame starts from the mean landmarks); nothing is teacher-forced. :func:`generate` keeps a
key/value cache per decoder layer, so a step costs O(context); :func:`generate_uncached` is its
plain reference (re-runs the whole decoder on the prefix at every step, O(T²)); a test holds the
two equal.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_into, load_model, load_weights
from ..errors import CheckpointError
from ..subject import Subject
from ..training import torch_threads
from . import fast_infer
from .config import Stage1Config
from .decoder import KVCache
from .encoder import NUM_POINTS
from .features import AudioFrontEnd, load_driving_audio, prepare_audio
from .linear_prior import LinearPrior
from .model import PriorBlend, Stage1Model

CHECKPOINT_KIND = "stage1"
PRIOR_FILE = "prior.safetensors"
"""Beside a stage-1 checkpoint fine-tuned from the prior: the weights and statistics it started
from, the prior fitted to the subject (``Stage1Config.prior_blend``; same config and size)."""


KERNELS = ("auto", "numpy", "torch")
"""Loops of :func:`generate`: ``numpy`` (:mod:`.fast_infer`, CPU only), ``torch`` (any device),
``auto`` (``numpy`` on the CPU, else ``torch``)."""


@torch.inference_mode()
def generate(
    model: Stage1Model, feats: torch.Tensor, cached: bool = True, kernel: str = "auto"
) -> torch.Tensor:
    """Displacements [B, T, 37, 3] for front-end rows ``feats`` [B, T, in_dim], autoregressive.

    With ``cached`` each step attends through a KV cache; without it (the reference the cached
    path is tested against) the full decoder runs over the whole prefix at every step. The steps
    are tiny and sequential: on the CPU they run on one thread, which is faster than several (and
    far faster on a busy machine, where waiting threads spin), and the cached loop runs in NumPy
    (``kernel``, :data:`KERNELS`), whose per-operation overhead is a fraction of PyTorch's.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown stage-1 kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    on_cpu = feats.device.type == "cpu"
    if kernel == "numpy" and not (on_cpu and cached):
        raise ValueError("the numpy stage-1 kernel runs the cached loop on the CPU only")
    with torch_threads(1 if on_cpu else 0):
        model.eval()
        if cached and on_cpu and kernel != "torch" and fast_infer.supports(model):
            return fast_infer.generate_numpy(model, feats)
        states = model.decoder.prepare(model.encode_audio(feats))
        step = _generate if cached else _generate_uncached
        return step(model, feats, states)


def generate_uncached(model: Stage1Model, feats: torch.Tensor) -> torch.Tensor:
    """Reference for :func:`generate`: the full decoder over the whole prefix at every step."""
    return generate(model, feats, cached=False)


def _generate(model: Stage1Model, feats: torch.Tensor, states: list[torch.Tensor]) -> torch.Tensor:
    b, t = feats.shape[:2]
    caches = [KVCache() for _ in model.decoder.layers]
    out = feats.new_zeros(b, t, NUM_POINTS, 3)
    prev = feats.new_zeros(b, 1, NUM_POINTS, 3)  # the start: the mean landmarks
    for i in range(t):
        x = model.decoder(model.encode_landmarks(prev), states, q_offset=i, caches=caches)
        prev = model.output(x)  # [B, 1, 37, 3]
        out[:, i] = prev[:, 0]
    return out


def _generate_uncached(
    model: Stage1Model, feats: torch.Tensor, states: list[torch.Tensor]
) -> torch.Tensor:
    prev = feats.new_zeros(feats.shape[0], 1, NUM_POINTS, 3)  # [B, i + 1, 37, 3]: start + steps
    for _ in range(feats.shape[1]):
        x = model.decoder(model.encode_landmarks(prev), states, q_offset=0)
        prev = torch.cat([prev, model.output(x)[:, -1:]], dim=1)
    return prev[:, 1:]


def load_stage1(source: Subject | str | os.PathLike[str]) -> Stage1Model:
    """The trained stage-1 model of a subject (or of a checkpoint folder), ready for inference."""
    if isinstance(source, Subject):
        folder = source.model_dir("stage1")
    else:
        path = Path(source)
        folder = path / "models" / "stage1" if (path / "subject.json").is_file() else path
    state, raw = load_model(folder, CHECKPOINT_KIND)
    config = Stage1Config.from_dict(raw.get("config", {}))
    in_dim = raw.get("meta", {}).get("audio_in_dim")
    if not isinstance(in_dim, int):
        raise CheckpointError(f"{folder}/config.json lacks meta.audio_in_dim; train stage 1 again")
    model = Stage1Model(config, in_dim)
    load_into(model, state, str(folder))
    meta = raw.get("meta", {})
    model.is_prior = bool(meta.get("prior"))
    closed = meta.get("closed_lm")
    if closed is not None:
        model.closed_lm = np.asarray(closed, dtype=np.float32).reshape(NUM_POINTS, 3)
    model.sync_offset = float(meta.get("sync", {}).get("offset_frames", 0.0))
    model.eval()
    wanted = config.prior_blend > 0 or config.linear_share > 0
    if wanted and (folder / PRIOR_FILE).is_file():
        model.blend = PriorBlend(
            _load_start(folder / PRIOR_FILE, config, in_dim), config.prior_blend
        )
        if config.linear_share > 0:
            model.blend.linear = LinearPrior.load(folder)
            model.blend.linear_weight = config.linear_share
    return model


def _load_start(path: Path, config: Stage1Config, in_dim: int) -> Stage1Model:
    """The prior a fine-tuned model started from (:data:`PRIOR_FILE`)."""
    todo = (
        "it holds the speaker prior this stage-1 model was fine-tuned from: delete it to use "
        "the fine-tuned model alone, or train stage 1 again"
    )
    prior = Stage1Model(config, in_dim)
    load_into(prior, load_weights(path, todo), str(path))
    return prior.eval()


_FRONT_ENDS: dict[int, AudioFrontEnd] = {}


def front_end_for(model: Stage1Model) -> AudioFrontEnd:
    """The feature extractor ``model`` was trained with (wav2vec2 must then be present)."""
    fe = _FRONT_ENDS.get(id(model))
    if fe is None or fe.config is not model.config:
        fe = AudioFrontEnd(model.config, allow_fallback=False)
        if fe.in_dim != model.audio_in_dim:
            raise CheckpointError(
                f"the audio front end gives {fe.in_dim} values per frame but the model expects "
                f"{model.audio_in_dim}; the wav2vec2 weights differ from those it was trained with"
            )
        _FRONT_ENDS[id(model)] = fe
    return fe


def predict(
    source: Stage1Model | Subject | str | os.PathLike[str],
    audio: np.ndarray | str | os.PathLike[str],
    sample_rate: int = 16000,
) -> np.ndarray:
    """Head-frame points [ceil(S / 640), 37, 3] (iBUG 0–16 then 48–67) driven by ``audio``.

    ``source`` is a model, a subject (its trained stage-1 model) or a subject/checkpoint folder.
    ``audio`` is a file of any format, rate and channel count, or samples [S] / [S, C] at
    ``sample_rate``. Audio shorter than one frame gives one frame; silence gives a still mouth.
    A model that knows its subject's closed mouth (``closed_lm``) closes it in every silence
    of at least 0.3 s (:func:`~.prior.silent_frames`).
    """
    model = source if isinstance(source, Stage1Model) else load_stage1(source)
    if isinstance(audio, (str, os.PathLike)):
        samples = load_driving_audio(audio)
    else:
        samples = prepare_audio(audio, sample_rate)
    return track_of(model, front_end_for(model)(samples), samples)


def track_of(model: Stage1Model, feats: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """The points [T, 37, 3] :func:`predict` gives for front-end rows ``feats`` [T, in_dim] of
    16 kHz ``samples``: free-running decoding, the prior's share blended in (``model.blend``),
    then :func:`finish_track`."""
    device = next(model.parameters()).device
    rows = torch.from_numpy(np.asarray(feats, np.float32))[None].to(device)  # [1, T, in_dim]
    points = model.to_points(generate(model, rows))[0].cpu().numpy()
    fitted = None
    if model.blend is not None and model.blend.weight > 0:
        prior = model.blend.prior.to(device)
        fitted = prior.to_points(generate(prior, rows))[0].cpu().numpy()
    return finish_track(model, blended(model, points, fitted, samples), samples)


def blended(
    model: Stage1Model, points: np.ndarray, fitted: np.ndarray | None, samples: np.ndarray
) -> np.ndarray:
    """The fine-tuned model's raw ``points`` [T, 37, 3] with the shares of ``model.blend``
    mixed in: the fitted prior's free-running ``fitted`` points (when its weight is above 0)
    and the linear part's motion for ``samples``, brought to the size of ``points``'s."""
    blend = model.blend
    if blend is None:
        return points
    others: list[tuple[np.ndarray, float]] = []
    if blend.weight > 0 and fitted is not None:
        others.append((fitted, blend.weight))
    if blend.linear is not None and blend.linear_weight > 0:
        disp = torch.from_numpy(blend.linear.displacements(samples, len(points)))
        linear = blend.prior.to_points(disp.to(blend.prior.mean_lm.device)).cpu().numpy()
        others.append((sized_like(linear, points), blend.linear_weight))
    return mix_tracks(points, others)


def _motion(track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(track, np.float64)
    mean = a.mean(axis=0, keepdims=True)
    return mean, a - mean


def sized_like(track: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``track`` [T, 37, 3] with its motion (about its mean over time) scaled to the size of
    ``like``'s (the root of the summed squared deviations)."""
    mean, motion = _motion(track)
    size, now = float(np.linalg.norm(_motion(like)[1])), float(np.linalg.norm(motion))
    return (mean + motion * (size / now if now > 1e-12 else 1.0)).astype(np.float32)


def mix_tracks(points: np.ndarray, others: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """``points`` [T, 37, 3] with a share of their motion taken from each ``(track, weight)``
    of ``others``: the motions (each track about its own mean over time) mixed, ``points``
    keeping 1 − the weights, then scaled to the size of ``points``'s own, about ``points``'s
    mean. Tracks that disagree in places average to a smaller motion; this keeps the motion's
    overall size (the mouth opening alone may still come out smaller where the tracks disagree
    more on the lips than on the jaw, docs/prior.md)."""
    mean, own = _motion(points)
    mixed = (1.0 - sum(w for _, w in others)) * own
    for track, weight in others:
        mixed = mixed + weight * _motion(track)[1]
    size, now = float(np.linalg.norm(own)), float(np.linalg.norm(mixed))
    return (mean + mixed * (size / now if now > 1e-12 else 1.0)).astype(np.float32)


def finish_track(
    model: Stage1Model, points: np.ndarray, samples: np.ndarray, sigma: float | None = None
) -> np.ndarray:
    """The network's points [T, 37, 3] for 16 kHz ``samples`` as :func:`predict` returns them:
    smoothed over time (``smooth_frames``, or ``sigma`` when given; :func:`smooth_track`), and
    with the mouth closed in every silence of at least 0.3 s when the model knows its subject's
    closed mouth."""
    sigma = model.config.smooth_frames if sigma is None else sigma
    points = smooth_track(np.asarray(points, np.float32), sigma)
    if model.closed_lm is not None:
        from .prior import close_silences, silent_frames

        points = close_silences(points, silent_frames(samples, len(points)), model.closed_lm)
    return points


def smooth_track(points: np.ndarray, sigma: float) -> np.ndarray:
    """``points`` [T, ...] smoothed along time by a Gaussian of ``sigma`` frames (edges held),
    then scaled about the clip's mean so the motion keeps its size (the sum of squared
    deviations from the mean is the unsmoothed one's): the jitter goes, the range stays."""
    if sigma <= 0 or len(points) < 2:
        return points
    from scipy.ndimage import gaussian_filter1d

    mean = points.mean(axis=0, keepdims=True)
    smooth = gaussian_filter1d(points, sigma, axis=0, mode="nearest") - mean
    before, after = float(np.linalg.norm(points - mean)), float(np.linalg.norm(smooth))
    gain = before / after if after > 1e-12 else 1.0
    return (mean + smooth * gain).astype(points.dtype)
