"""Training the stage-1 prior on many speakers (``scripts/make_prior.py`` runs this).

Data: the corpus's tracked clips (:mod:`.corpus`), each speaker's landmarks normalised into the
speaker-normalised space (:class:`~.prior.SpeakerNorm`). Audio augmentation makes the mel front
end care less about whose voice it hears; each clip is used clean and in ``variants`` perturbed
copies made once before training (:mod:`.augment`: speed, channel and noise), and every training
window is played louder or softer (*loudness*, exact in the log-mel domain).

Steps: ``batch`` windows of ``window`` frames from random clips and copies (a clip is picked in
proportion to its length), smooth-L1 on the normalised displacements, teacher forcing first and
free-running passes after ``rollout_start`` (as the subject trainer does), frames that were not
tracked left out of the loss. Validation: held-out *speakers* of the training split, run free on
their clean audio; mouth-opening correlation and LMD vs their mean landmarks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..landmarks import STAGE1_POINTS, mouth_opening
from ..timing import SAMPLES_PER_FRAME
from .augment import SNR_DB, TILT, voice_copies
from .config import Stage1Config
from .corpus import CorpusClip
from .features import AudioFrontEnd, log_mel_with_gain
from .linear_prior import LinearPrior
from .model import Stage1Model
from .prior import SpeakerNorm
from .train import frame_loss


@dataclass
class PriorRecipe:
    """How the prior is trained (recorded in its config.json)."""

    steps: int = 3000
    batch: int = 8
    window: int = 100
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.01
    variants: int = 4
    """Augmented copies of every clip besides the clean one."""
    snr_db: tuple[float, float] = SNR_DB
    tilt: tuple[float, float] = TILT
    """Range of the first-order filter coefficient c in y = x - c x[-1]."""
    gain_jitter_db: float = 6.0
    input_noise: float = 0.02
    rollout_passes: int = 1
    rollout_start: float = 0.3
    val_speakers: tuple[str, ...] = ()
    val_every: int = 250
    seed: int = 0
    min_tracked: float = 0.9
    """Windows with fewer tracked frames than this fraction are not drawn."""
    mouth_weight: float = 0.0
    """Weight of the mouth-shape term of the loss (:func:`~.train.frame_loss`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PriorClip:
    """One copy (clean or augmented) of a clip, ready to window."""

    name: str
    speaker: str
    feats: np.ndarray  # [T, in_dim]
    disp: np.ndarray  # [T, 37, 3] speaker-normalised
    tracked: np.ndarray  # [T] bool
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def speaker_norms(clips: Sequence[CorpusClip]) -> dict[str, SpeakerNorm]:
    """Each speaker's normalisation, from the tracked frames of all of that speaker's clips."""
    by: dict[str, list[np.ndarray]] = {}
    for c in clips:
        lm = np.asarray(c.tracks.lm_world, np.float64)[c.tracks.tracked]
        by.setdefault(c.speaker, []).append(lm)
    return {s: SpeakerNorm.from_landmarks(np.concatenate(v)) for s, v in by.items()}


def speaker_folds(clips: Sequence[CorpusClip], k: int) -> list[tuple[str, ...]]:
    """The speakers of ``clips`` dealt into ``k`` folds for cross-validating a prior recipe
    (``scripts/prior_folds.py``): longest speakers first (frames over all their clips), each to
    the fold with the fewest frames so far, ties to the lower fold. Deterministic; a speaker's
    clips stay in one fold. Each fold's speakers come back sorted."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    frames: dict[str, int] = {}
    for c in clips:
        frames[c.speaker] = frames.get(c.speaker, 0) + c.frames
    if len(frames) < k:
        raise ValueError(f"{len(frames)} speakers cannot fill {k} folds")
    folds: list[list[str]] = [[] for _ in range(k)]
    load = [0] * k
    for speaker in sorted(frames, key=lambda s: (-frames[s], s)):
        i = min(range(k), key=lambda j: (load[j], j))
        folds[i].append(speaker)
        load[i] += frames[speaker]
    return [tuple(sorted(f)) for f in folds]


def prepare_clips(
    clips: Sequence[CorpusClip],
    norms: dict[str, SpeakerNorm],
    front_end: AudioFrontEnd,
    recipe: PriorRecipe,
    augment: bool = True,
) -> list[PriorClip]:
    """The clean copy of every clip plus ``recipe.variants`` augmented ones (when ``augment``)."""
    rng = np.random.default_rng([recipe.seed, 7])
    out = []
    for c in clips:
        t = c.frames
        audio = c.tracks.audio[: t * SAMPLES_PER_FRAME]
        pts = np.asarray(c.tracks.lm_world, np.float64)[:, list(STAGE1_POINTS)]
        disp = norms[c.speaker].normalise(pts)
        copies = [(audio, disp, c.tracks.tracked)]
        count = recipe.variants if augment else 0
        copies += voice_copies(
            audio, disp, c.tracks.tracked, count, rng, recipe.tilt, recipe.snr_db
        )
        for a, d, tr in copies:
            feats = front_end(a)
            n = min(len(feats), len(d))
            out.append(PriorClip(c.name, c.speaker, feats[:n], d[:n], tr[:n]))
    for p in out:
        p.starts = _window_starts(p, recipe)
    return out


def _window_starts(clip: PriorClip, recipe: PriorRecipe) -> np.ndarray:
    t = len(clip.disp)
    w = min(recipe.window, t)
    cs = np.concatenate([[0], np.cumsum(clip.tracked.astype(np.int64))])
    starts = np.arange(0, t - w + 1)
    good = (cs[starts + w] - cs[starts]) >= recipe.min_tracked * w
    return starts[good]


def statistics(clips: Sequence[PriorClip], front_end: AudioFrontEnd) -> dict[str, np.ndarray]:
    """Buffers of the prior: mean 0 and scale 1 (normalised space), the displacement and
    feature statistics over every copy (the std floors of ``front_end.feature_std``)."""
    disp = np.concatenate([c.disp[c.tracked] for c in clips]).astype(np.float64)
    feats = np.concatenate([c.feats for c in clips]).astype(np.float64)
    disp_std = np.maximum(np.sqrt(np.mean(disp**2, axis=(0, 1))), 1e-3)
    return {
        "mean_lm": np.zeros((len(STAGE1_POINTS), 3), np.float32),
        "lm_scale": np.ones(3, np.float32),
        "disp_std": disp_std.astype(np.float32),
        "feat_mean": feats.mean(axis=0).astype(np.float32),
        "feat_std": front_end.feature_std(feats),
    }


def sample_batch(
    clips: Sequence[PriorClip], recipe: PriorRecipe, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch`` windows: features, targets, teacher-forcing inputs and the tracked mask."""
    usable = [c for c in clips if len(c.starts) and len(c.disp) >= recipe.window]
    weights = np.array([len(c.starts) for c in usable], np.float64)
    pick = rng.choice(len(usable), size=recipe.batch, p=weights / weights.sum())
    w = recipe.window
    f, tg, pv, mk = [], [], [], []
    for i in pick:
        c = usable[i]
        s = int(c.starts[rng.integers(len(c.starts))])
        target = c.disp[s : s + w]
        prev = np.concatenate([c.disp[s - 1 : s] if s > 0 else np.zeros_like(target[:1]),
                               target[:-1]])  # fmt: skip
        f.append(c.feats[s : s + w])
        tg.append(target)
        pv.append(prev)
        mk.append(c.tracked[s : s + w])
    return (
        torch.from_numpy(np.stack(f)),
        torch.from_numpy(np.stack(tg)),
        torch.from_numpy(np.stack(pv)),
        torch.from_numpy(np.stack(mk)),
    )


def _lr_factor(step: int, recipe: PriorRecipe) -> float:
    if step < recipe.warmup:
        return (step + 1) / recipe.warmup
    t = min(1.0, (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two series; 0 when either is constant or shorter than 2."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def opening_r(pred: np.ndarray, true: np.ndarray, max_lag: int = 5) -> tuple[float, int, float]:
    """(r at lag 0, best lag in ±``max_lag`` frames, r at that lag) of two opening series [T];
    a positive lag means the prediction comes late."""
    r0 = pearson(pred, true)
    best, best_r = 0, r0
    for lag in range(-max_lag, max_lag + 1):
        if lag == 0:
            continue
        a, b = (pred[lag:], true[:-lag]) if lag > 0 else (pred[:lag], true[-lag:])
        r = pearson(a, b)
        if r > best_r:
            best, best_r = lag, r
    return r0, best, best_r


@torch.no_grad()
def validate(model: Stage1Model, clips: Sequence[PriorClip], norms: dict[str, SpeakerNorm],
             poses: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> dict[str, float]:  # fmt: skip
    """Median over ``clips`` (clean copies of held-out speakers) of the free-running
    mouth-opening r (lag 0) and of LMD / mean-landmark LMD in track space."""
    from .infer import generate
    from .metrics import lmd_track_space, to68

    rs, ratios = [], []
    for c in clips:
        disp = generate(model, torch.from_numpy(c.feats)[None])[0].numpy()
        norm = norms[c.speaker]
        pred, true = norm.denormalise(disp), norm.denormalise(c.disp)
        m = c.tracked
        rs.append(opening_r(mouth_opening(to68(pred))[m], mouth_opening(to68(true))[m], 0)[0])
        pose, K, size = poses[c.name]
        mean = np.broadcast_to(norm.mean, true.shape)
        base = lmd_track_space(mean[m], true[m], pose[m], K, size)
        ratios.append(lmd_track_space(pred[m], true[m], pose[m], K, size) / max(base, 1e-9))
    return {"val_r": float(np.median(rs)), "val_lmd_ratio": float(np.median(ratios))}


def train_prior(
    config: Stage1Config,
    recipe: PriorRecipe,
    train: Sequence[PriorClip],
    val: Sequence[PriorClip],
    norms: dict[str, SpeakerNorm],
    poses: dict[str, tuple[np.ndarray, np.ndarray, int]],
    front_end: AudioFrontEnd,
    log: Callable[[str], None] = print,
) -> tuple[Stage1Model, list[dict[str, float]]]:
    """Train the prior; returns the model and the validation history."""
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    model = Stage1Model(config, front_end.in_dim)
    model.set_statistics(**statistics(train, front_end))
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    history: list[dict[str, float]] = []
    rollout_from = int(recipe.rollout_start * recipe.steps)
    t0 = time.monotonic()
    for step in range(recipe.steps):
        model.train()
        feats, target, prev, mask = sample_batch(train, recipe, rng)
        if recipe.gain_jitter_db > 0 and "mel" in config.audio_features:
            db = torch.empty(feats.shape[0], 1).uniform_(-1, 1) * recipe.gain_jitter_db
            feats = log_mel_with_gain(feats, config.n_mels, db.expand(-1, feats.shape[1]))
        prev = prev + recipe.input_noise * torch.randn_like(prev) * model.disp_std
        if recipe.rollout_passes > 0 and step >= rollout_from:
            with torch.no_grad():
                for _ in range(recipe.rollout_passes):
                    pred = model(feats, prev)
                    prev = torch.cat([prev[:, :1], pred[:, :-1]], dim=1)
        for group in opt.param_groups:
            group["lr"] = recipe.lr * _lr_factor(step, recipe)
        pred = model(feats, prev)
        per = frame_loss(pred, target, recipe.mouth_weight)
        loss = (per * mask).sum() / mask.sum().clamp_min(1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % recipe.val_every == 0 or step + 1 == recipe.steps:
            rec = {"step": step + 1, "loss": float(loss.detach()), "seconds": time.monotonic() - t0}
            if val:
                rec |= validate(model, val, norms, poses)
            history.append(rec)
            log(" ".join(f"{k}={v:.4g}" for k, v in rec.items()))
    model.eval()
    return model, history


def _clean(c: CorpusClip, norm: SpeakerNorm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A clip's audio, speaker-normalised displacements and tracked frames."""
    pts = np.asarray(c.tracks.lm_world, np.float64)[:, list(STAGE1_POINTS)]
    return c.tracks.audio[: c.frames * SAMPLES_PER_FRAME], norm.normalise(pts), c.tracks.tracked


def fit_linear(clips: Sequence[CorpusClip], norms: dict[str, SpeakerNorm]) -> LinearPrior:
    """The prior's linear part (:mod:`.linear_prior`), fitted on the clean ``clips``."""
    return LinearPrior.fit([_clean(c, norms[c.speaker]) for c in clips])


def linear_val_r(
    linear: LinearPrior, clips: Sequence[CorpusClip], norms: dict[str, SpeakerNorm]
) -> float:
    """Median over ``clips`` (held-out speakers) of the linear part's mouth-opening r (lag 0)."""
    from .metrics import to68

    rs = []
    for c in clips:
        norm = norms[c.speaker]
        audio, disp, tracked = _clean(c, norm)
        pred = norm.denormalise(linear.displacements(audio, len(disp)))
        true = norm.denormalise(disp)
        rs.append(pearson(mouth_opening(to68(pred))[tracked], mouth_opening(to68(true))[tracked]))
    return float(np.median(rs)) if rs else float("nan")


def save_prior(model: Stage1Model, folder: Path, meta: dict[str, Any], half: bool = True) -> None:
    """Write the prior checkpoint (fp16 weights when ``half``) with ``meta["prior"]`` set."""
    from ..checkpoint import save_model
    from .infer import CHECKPOINT_KIND

    state = {
        k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()
    }
    full = {"audio_in_dim": model.audio_in_dim, "prior": meta}
    save_model(folder, CHECKPOINT_KIND, state, model.config.to_dict(), full)
