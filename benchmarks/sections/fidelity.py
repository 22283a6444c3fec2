"""Fidelity at 512²: today's path, the refiner path and the baselines side by side.

Subjects: ``$TALKSTUDIO_FIDELITY_SUBJECTS`` (subject folders separated by ``:``), else
``German_20s`` and ``TaoKai__subtitleEffect__obama`` in ``../subjects`` beside the repository
(each needs a trained head and torso; one without them is reported as not measured).
``$TALKSTUDIO_FIDELITY_FRAMES=N`` scores N validation frames, evenly spaced (default: all);
``$TALKSTUDIO_FIDELITY_ROWS`` measures only some rows (keys of :data:`ROWS`, comma-separated).

Every row renders the validation frames from their tracked landmarks and poses and is scored
at 512² against the real frame (core/fidelity.py: head PSNR over the head mask; head SSIM,
HaarPSI and MS-GMSD over the head's box; mouth sharpness ratio; full-frame PSNR; seam ratio in
a 12-px band around the head-mask boundary, where the head is blended into the plate; paste seam,
the same around the edge of paste-back's blend into the real frame), medians over frames, and the
wall time per frame:

- ``today L²↑``: the head rendered at its training side L, completed by the torso UNet at L,
  upscaled (bilinear) to 512²: what a 512² export of a head trained at L amounts to;
- ``today 512²`` (``today S²`` at another scoring side S): the head NeRF rendered at 512² and the torso UNet applied at 512² (what
  ``talkstudio render --size 512`` does today);
- ``refiner``: the head at the refiner's input side, refined to the subject's frame
  (core/refiner ``render_refined``); "not trained" when the subject has no refiner;
- ``mean frame``: the per-pixel mean of the training frames;
- ``head on mean``: the same rendered head as ``today L²↑`` (colour and opacity upscaled)
  pasted over the mean frame, no network: the baseline a full frame has to beat, with the
  head held equal, so only the completion of torso, neck and background is compared;
- ``real head on mean``: the real frame's head over the mean frame (the torso section's
  baseline): full-frame PSNR and seam only, its head being the truth;
- ``real frame L²↑``: the real frame itself shrunk to the head's side L and enlarged back
  (bilinear), with its own head mask as the opacity: no model, the scores a head that were
  perfect at L would get. It calibrates the seam ratio: an image that is a little soft
  everywhere errs most at the sharpest edges, the head's outline among them, so even this row's
  seam ratio is far above 1 (docs/design.md "Evaluation").

A quick run scores two frames of the built-in demo subject at 256².
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from benchmarks.bench import Context, Measure
from benchmarks.common import SUBJECTS, log, set_threads, studio_subject

SIZE = 512
DEFAULT_SUBJECTS = ("German_20s", "TaoKai__subtitleEffect__obama")
HEAD_FREE = ("psnr_full",)
"""The columns of the real-head baseline (its head is the truth itself, so the head scores and
the seam ratio, an error over a zero error, say nothing)."""


def _subjects(ctx: Context) -> list[Path]:
    if ctx.quick:
        return [studio_subject(ctx.results)[0]]
    env = os.environ.get("TALKSTUDIO_FIDELITY_SUBJECTS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [SUBJECTS / name for name in DEFAULT_SUBJECTS]


def _untrained(subject_dir: Path) -> str | None:
    """Why ``subject_dir`` cannot be measured, or None."""
    from talkstudio.core.subject import Subject

    if not (subject_dir / "subject.json").is_file():
        return f"not measured: no subject at {subject_dir}"
    subject = Subject.open(subject_dir)
    missing = [p for p in ("head", "torso") if not subject.has_model(p)]
    if missing:
        return f"not measured: {subject_dir} has no trained {' or '.join(missing)}"
    return None


def _up(x, size: int):  # [B, C, L, L] tensor -> [B, C, size, size]
    import torch.nn.functional as F

    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _cat(*parts):  # tensors [B, C, S, S] -> [B, ΣC, S, S]
    import torch

    return torch.cat(parts, dim=1)


def _hwc(x) -> np.ndarray:  # [1, C, S, S] or [C, S, S] tensor -> float64 [S, S, C]
    return x.reshape(-1, x.shape[-2], x.shape[-1]).permute(1, 2, 0).double().clamp(0, 1).numpy()


class _Renders:
    """Every row's frame for one subject at ``size``, each with its wall time (ms)."""

    def __init__(self, subject_dir: Path, size: int) -> None:
        import torch

        from talkstudio.core.head import HeadModel
        from talkstudio.core.subject import Subject
        from talkstudio.core.torso import Compositor
        from talkstudio.core.torso.data import mean_frame, resize_rgb

        self.subject = Subject.open(subject_dir)
        self.size = size
        self.head = HeadModel.load(self.subject.model_dir("head"), device="cpu")
        self.torso = Compositor.load(self.subject.model_dir("torso"), device="cpu")
        self.low = int(self.head.config.image_size)
        plate = self.subject.load_background().astype(np.float32) / 255.0
        self.plates = {
            s: torch.from_numpy(resize_rgb(plate, s)).float() for s in {self.low, size}
        }  # [S, S, 3]
        self.mean = mean_frame(self.subject, self.subject.meta.train_range, size)  # [3, S, S]

    def _render(self, i: int, side: int):
        from talkstudio.core.geometry import scale_intrinsics

        meta, tracks = self.subject.meta, self.subject.tracks
        K = scale_intrinsics(meta.K, meta.size, side)
        return self.head.render(K, tracks.pose[i], tracks.lm_world[i], self.plates[side])

    def _composed(self, image, side: int):  # -> [1, 3, side, side]
        out = self.torso(
            self.plates[side].permute(2, 0, 1), image.head.permute(2, 0, 1), image.opacity
        )
        return out[None]

    def today_low(self, i: int) -> np.ndarray:
        image = self._render(i, self.low)
        rgb = _up(self._composed(image, self.low), self.size)
        return _hwc(_cat(rgb, _up(image.opacity[None, None], self.size)))

    def today_full(self, i: int) -> np.ndarray:
        image = self._render(i, self.size)
        return _hwc(_cat(self._composed(image, self.size), image.opacity[None, None]))

    def mean_frame(self, i: int) -> np.ndarray:
        return _hwc(self.mean)

    def head_on_mean(self, i: int) -> np.ndarray:
        import torch

        image = self._render(i, self.low)  # rendered again: the row's time is its own
        layers = torch.cat([image.head, image.opacity[..., None]], -1)  # [L, L, 4]
        up = _up(layers.permute(2, 0, 1)[None], self.size)[0]  # [4, S, S]
        return _hwc(_cat(up[None, :3] + (1.0 - up[None, 3:]) * self.mean, up[None, 3:]))

    def real_head_on_mean(self, i: int) -> np.ndarray:
        from talkstudio.core.torso.data import load_frame_pair, to_chw

        frame, alpha = load_frame_pair(self.subject, i, self.size)
        a = to_chw(alpha)
        return _hwc(to_chw(frame) * a + (1.0 - a) * self.mean)

    def real_at_low(self, i: int) -> np.ndarray:
        from talkstudio.core.torso.data import load_frame_pair, resize_rgb

        frame, alpha = load_frame_pair(self.subject, i, self.low)
        up = np.dstack([frame, alpha])  # [L, L, 4]
        return resize_rgb(up, self.size).astype(np.float64)

    def truth(self, i: int) -> np.ndarray:
        from talkstudio.core.torso.data import resize_rgb

        return resize_rgb(self.subject.load_frame(i), self.size)

    def refined(self, frames: list[int]) -> Iterator[np.ndarray] | str:
        """The refiner's frames at ``size`` (a generator), or why there are none."""
        if not self.subject.has_model("refiner"):
            return "not trained"
        from talkstudio.core.refiner import render_refined
        from talkstudio.core.torso.data import resize_rgb

        rgbas = render_refined(self.subject.root, frames, with_opacity=True)
        return (resize_rgb(rgba, self.size) for rgba in rgbas)


def _frames(subject, quick: bool) -> list[int]:
    from talkstudio.core.fidelity import evenly_spaced

    val = list(subject.meta.val_range)
    wanted = 2 if quick else int(os.environ.get("TALKSTUDIO_FIDELITY_FRAMES", "0") or 0)
    return [val[k] for k in evenly_spaced(len(val), wanted or None)]


ROWS: dict[str, str] = {
    "today_low": "today L²↑",
    "today_full": "today S²",
    "refiner": "refiner",
    "mean": "mean frame",
    "head_on_mean": "head on mean",
    "real_head_on_mean": "real head on mean",
    "real_at_low": "real frame L²↑",
}
"""Row keys (``$TALKSTUDIO_FIDELITY_ROWS`` picks some, comma-separated) and their titles; S and
L are filled in with the scoring side and the head's training side."""


def _rows() -> list[str]:
    env = os.environ.get("TALKSTUDIO_FIDELITY_ROWS", "")
    wanted = [k.strip() for k in env.split(",") if k.strip()] or list(ROWS)
    unknown = [k for k in wanted if k not in ROWS]
    if unknown:
        raise SystemExit(f"TALKSTUDIO_FIDELITY_ROWS: unknown rows {unknown}; have {list(ROWS)}")
    return wanted


def _measure_subject(subject_dir: Path, ctx: Context) -> tuple[list[Measure], str]:
    """The measures of one subject and its side-by-side table."""
    from talkstudio.core.fidelity import COLUMNS, frame_regions, score_frame

    size = ctx.pick(SIZE, 256)
    load0 = os.getloadavg()[0]
    r = _Renders(subject_dir, size)
    frames = _frames(r.subject, ctx.quick)
    name = r.subject.meta.name or subject_dir.name
    rows = _rows()
    makers: dict[str, Callable[[int], np.ndarray]] = {
        "today_low": r.today_low,
        "today_full": r.today_full,
        "mean": r.mean_frame,
        "head_on_mean": r.head_on_mean,
        "real_head_on_mean": r.real_head_on_mean,
        "real_at_low": r.real_at_low,
    }
    makers = {k: f for k, f in makers.items() if k in rows}
    refined = r.refined(frames) if "refiner" in rows else None
    scores: dict[str, dict[str, list[float]]] = {
        row: {k: [] for k in [*COLUMNS, "ms"]} for row in rows
    }
    for n, i in enumerate(frames):
        truth = r.truth(i)
        regions = frame_regions(r.subject, i, size)
        got: dict[str, tuple[np.ndarray, float]] = {}
        for row, make in makers.items():
            t0 = time.perf_counter()
            got[row] = (make(i), (time.perf_counter() - t0) * 1e3)
        if refined is not None and not isinstance(refined, str):
            t0 = time.perf_counter()
            got["refiner"] = (next(refined), (time.perf_counter() - t0) * 1e3)
        for row, (rgb, ms) in got.items():
            opacity = rgb[..., 3] if rgb.shape[-1] == 4 else None  # the rendered head's
            sc = score_frame(rgb[..., :3], truth, regions, opacity)
            for k, v in sc.items():
                if row != "real_head_on_mean" or k in HEAD_FREE:
                    scores[row][k].append(v)
            scores[row]["ms"].append(ms)
        log("fidelity", f"{name}: frame {i} ({n + 1}/{len(frames)}), load {os.getloadavg()[0]:.1f}")
    load = f"load {load0:.1f}→{os.getloadavg()[0]:.1f}"
    note = f"{name}, {len(frames)} val frames at {size}², head L={r.low}, {load}"
    measures: list[Measure] = []
    units = {"ms": "ms/frame", "psnr_head": "dB", "psnr_full": "dB"}
    labels = {k: ROWS[k].replace("S²", f"{size}²").replace("L²", f"{r.low}²") for k in rows}
    for row in rows:
        if isinstance(refined, str) and row == "refiner":
            measures.append(Measure(f"{name} refiner", "-", [float("nan")], refined))
            continue
        for k, vals in scores[row].items():
            finite = [v for v in vals if np.isfinite(v)]
            if finite:
                title = "time" if k == "ms" else COLUMNS[k]
                unit = units.get(k, "-")
                measures.append(Measure(f"{name} {labels[row]}: {title}", unit, finite, note))
    why = {"refiner": refined} if isinstance(refined, str) else {}
    return measures, _table(f"{name} ({note})", scores, labels, why)


def _table(
    title: str, scores: dict[str, dict[str, list[float]]], labels: dict[str, str], why: dict
) -> str:
    """The medians as a Markdown table, one row per path (``why``: rows not measured, and why)."""
    from talkstudio.core.fidelity import COLUMNS

    keys = [*COLUMNS, "ms"]
    head = ["path", *COLUMNS.values(), "ms/frame"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, label in labels.items():
        if row in why:
            lines.append(f"| {label} | {why[row]} |" + " |" * (len(head) - 2))
            continue
        cells = []
        for k in keys:
            vals = [v for v in scores[row][k] if np.isfinite(v)]
            digits = 0 if k == "ms" else 2 if k.startswith("psnr") else 3
            cells.append(f"{statistics.median(vals):.{digits}f}" if vals else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(ctx: Context) -> list[Measure]:
    threads = set_threads(1)
    measures: list[Measure] = []
    tables: list[str] = []
    for subject_dir in _subjects(ctx):
        why = _untrained(subject_dir)
        if why is not None:
            measures.append(Measure(f"{subject_dir.name}", "-", [float("nan")], why))
            tables.append(f"### {subject_dir.name}\n\n{why}")
            continue
        got, table = _measure_subject(subject_dir, ctx)
        measures += got
        tables.append(table)
    text = f"CPU, {threads} torch thread(s)\n\n" + "\n\n".join(tables)
    (ctx.results / "fidelity.md").write_text(text + "\n")
    print(text)
    return measures
