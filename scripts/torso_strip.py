"""Write a PNG strip of a trained torso model on a subject's validation frames.

    python -m scripts.torso_strip SUBJECT [--model DIR] [--frames 6] [--out strip.png]

One row per validation frame (evenly spaced): the input head (as the network gets it, over
black), the UNet's output, the ground truth, and the baseline (ground-truth head pasted on the
mean training frame), at the model's image size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def build_strip(subject_dir: Path, model_dir: Path | None, frames: int, scale: int) -> np.ndarray:
    """RGB uint8 [rows·S·scale + header, 4·S·scale, 3]."""
    import cv2
    import torch

    from talkstudio.core.subject import Subject
    from talkstudio.core.torso import Compositor
    from talkstudio.core.torso.data import load_batch, mean_frame

    subject = Subject.open(subject_dir)
    comp = Compositor.load(model_dir or subject.model_dir("torso"), "cpu")
    size = comp.config.image_size
    val = list(subject.meta.val_range)
    picks = [val[int(k)] for k in np.linspace(0, len(val) - 1, min(frames, len(val)))]
    batch = load_batch(subject, picks, size)
    out = comp(batch.background, batch.head_rgb, batch.head_opacity)
    base = batch.baseline(mean_frame(subject, subject.meta.train_range, size)).clamp(0, 1)
    cols = [batch.head_rgb, out, batch.target, base]  # each [B, 3, S, S]
    grid = torch.cat([torch.cat(list(c), dim=2) for c in zip(*cols)], dim=1)  # [3, B·S, 4·S]
    img = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    header = np.full((24, img.shape[1], 3), 255, np.uint8)
    for k, label in enumerate(("input head", "UNet output", "ground truth", "paste on mean")):
        x = k * size * scale + 4
        cv2.putText(header, label, (x, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    for r, i in enumerate(picks):  # frame number at the top left of each row
        y = r * size * scale + 12
        cv2.putText(img, f"#{i}", (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
    return np.concatenate([header, img], axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("subject", type=Path)
    parser.add_argument("--model", type=Path, help="torso model folder (default: the subject's)")
    parser.add_argument("--frames", type=int, default=6, help="validation frames to show")
    parser.add_argument("--scale", type=int, default=2, help="pixel magnification")
    parser.add_argument("--out", type=Path, default=Path("torso_strip.png"))
    args = parser.parse_args(argv)
    import cv2

    from talkstudio.core import atomic

    strip = build_strip(args.subject, args.model, args.frames, args.scale)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    if not ok:
        print("could not encode the strip as PNG", file=sys.stderr)
        return 1
    atomic.write_bytes(args.out, buf.tobytes())
    print(f"wrote {args.out} ({strip.shape[1]}×{strip.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
