"""``talkstudio train head SUBJECT``: train the head NeRF, then score it on validation frames."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..cli import register_train_part
from ._training import train_part

if TYPE_CHECKING:
    from talkstudio.core.progress import Progress


VALIDATION_FRAMES = 50
"""Validation frames scored after training, spread over the split: each renders twice (with its
own and with the mean landmarks), so all of a 1-min clip's 154 took nearly 3 min on 2 cores."""


def _shown(p: Progress, every: int) -> bool:
    return p.step % every == 0 or p.step == p.total or not p.losses


def _train_head(args: argparse.Namespace) -> int:
    from talkstudio.core import atomic
    from talkstudio.core.head import HeadConfig, evaluate_head, train_head

    result = train_part(args, "head", HeadConfig.from_preset, train_head, _shown)
    if result is None:
        return 2
    report = evaluate_head(args.subject, result.model_dir, args.device, most=VALIDATION_FRAMES)
    s = report.summary()
    print(
        f"validation ({len(report.frames)} frames at {report.image_size}², spread over the "
        f"split): PSNR head "
        f"{s['psnr_head_model']:.2f} dB (mean-frame baseline {s['psnr_head_baseline']:.2f}), "
        f"full {s['psnr_full_model']:.2f} dB, mouth {s['psnr_mouth_model']:.2f} dB "
        f"(mean landmarks {s.get('psnr_mouth_model_mean_landmarks', float('nan')):.2f}), "
        f"SSIM {s['ssim_model']:.3f}"
    )
    atomic.write_json(result.model_dir / "validation.json", report.to_dict())
    if report.strip is not None:
        import cv2

        ok, buf = cv2.imencode(".png", cv2.cvtColor(report.strip, cv2.COLOR_RGB2BGR))
        if ok:
            atomic.write_bytes(result.model_dir / "validation_strip.png", buf.tobytes())
            print(f"render | truth strip: {result.model_dir / 'validation_strip.png'}")
    return 0


register_train_part("head", _train_head)
