"""The paper's Table III at a small budget: the five landmark encodings of the head NeRF.

    python -m scripts.table3 [--steps 600] [--subject PATH] [--kinds posenc mlp ...]

Each encoding trains the ``preview`` preset from scratch for the same number of steps on the same
subject (default: the synthetic benchmark subject, see ``benchmarks/common.py``) and is scored
on the validation frames (docs/design.md "Evaluation"). Prints a table and writes
``bench_results/table3.json``. Torch runs on one thread (``HEAD_BENCH_THREADS``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks.bench import device_description
from benchmarks.common import RESULTS, bench_subject, setup_threads, train_model
from talkstudio.core.atomic import write_json

ROWS = {
    "posenc": "γ(·)",
    "mlp": "MLP",
    "keypoint": "Eq. (7)",
    "gaussian_no_depth": "Eq. (8a) w/o γ(d_z)",
    "gaussian": "Eq. (8a)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=600, help="training steps per encoding")
    parser.add_argument("--subject", help="subject folder (default: synthetic benchmark subject)")
    parser.add_argument("--kinds", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="folder for the models and table3.json"
    )
    parser.add_argument(
        "--size", type=int, help="image size of the head models (default: the preset's)"
    )
    args = parser.parse_args(argv)
    if args.subject:
        os.environ["HEAD_BENCH_SUBJECT"] = args.subject

    from talkstudio.core.head import evaluate_head

    threads = setup_threads()
    subject = bench_subject(args.out)
    print(f"device: {device_description()}; torch threads {threads}; subject {subject}")
    print(f"budget: {args.steps} steps of the preview preset per encoding\n")
    rows = []
    for kind in args.kinds:
        out = args.out / "table3" / kind
        size = {} if args.size is None else {"image_size": args.size}
        folder, cpu_s = train_model(subject, out, args.steps, encoding=kind, **size)
        t0 = time.perf_counter()
        report = evaluate_head(subject, folder)
        s = report.summary()
        row = {
            "mode": ROWS[kind],
            "encoding": kind,
            "train_cpu_s": round(cpu_s, 1),
            "psnr_full": s["psnr_full_model"],
            "psnr_head": s["psnr_head_model"],
            "psnr_mouth": s["psnr_mouth_model"],
            "psnr_mouth_mean_landmarks": s.get("psnr_mouth_model_mean_landmarks", float("nan")),
            "ssim": s["ssim_model"],
            "eval_s": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        print(
            f"{row['mode']:<22} head {row['psnr_head']:6.2f} dB  full {row['psnr_full']:6.2f} dB  "
            f"mouth {row['psnr_mouth']:6.2f} dB (mean lm {row['psnr_mouth_mean_landmarks']:6.2f})  "
            f"SSIM {row['ssim']:.3f}  train {row['train_cpu_s']:.0f} s CPU",
            flush=True,
        )
    print(
        "\n| Mode | PSNR head | PSNR full | PSNR mouth | mouth, mean landmarks | SSIM | train CPU s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['psnr_head']:.2f} | {r['psnr_full']:.2f} | {r['psnr_mouth']:.2f} | "
            f"{r['psnr_mouth_mean_landmarks']:.2f} | {r['ssim']:.3f} | {r['train_cpu_s']:.0f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "device": device_description(),
        "threads": threads,
        "steps": args.steps,
        "subject": str(subject),
        "rows": rows,
    }
    write_json(args.out / "table3.json", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
