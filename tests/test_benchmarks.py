"""Every benchmark section and script still runs: each section once, one repetition on tiny
inputs (``python -m benchmarks --quick``, the real code paths), and the scripts of ``scripts/``
(widget gallery, torso strip, Table III, demo builder, screenshots, speaker prior) offscreen on tiny subjects or
the built-in demo, writing into temporary folders. The figures of a quick run mean nothing; only
that it ran and wrote its results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench import available_sections

REPO = Path(__file__).resolve().parents[1]
SECTIONS = available_sections()


def _run(
    args: list[str], timeout: int = 1800, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from the repository root, offscreen, one torch thread (``env_extra``:
    more environment variables)."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        OMP_NUM_THREADS="1",
        TALKSTUDIO_BENCH_THREADS="1",
        **env_extra,
    )
    res = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-3000:])
    return res


def test_every_section_module_is_a_section() -> None:
    """Each module of ``benchmarks/sections`` is listed and has ``run(ctx)``."""
    import inspect

    from benchmarks.bench import load_section

    on_disk = sorted(p.stem for p in (REPO / "benchmarks" / "sections").glob("[!_]*.py"))
    assert on_disk == SECTIONS and "engine" in SECTIONS and "studio" in SECTIONS
    for name in SECTIONS:
        assert list(inspect.signature(load_section(name).run).parameters) == ["ctx"], name


@pytest.mark.slow
@pytest.mark.parametrize("section", SECTIONS)
def test_section_runs_quick(section: str, tmp_path: Path) -> None:
    res = _run(["-m", "benchmarks", "--quick", "--out", str(tmp_path), section])
    assert f"## {section}" in res.stdout
    payload = json.loads((tmp_path / f"{section}.json").read_text())
    assert payload["quick"] is True and payload["section"] == section
    measured = [m for m in payload["measures"] if all(math.isfinite(x) for x in m["samples"])]
    assert measured, f"{section} measured nothing: {payload['measures']}"
    assert all(len(m["samples"]) >= 1 for m in payload["measures"])


@pytest.mark.slow
def test_documented_entry_runs(tmp_path: Path) -> None:
    """``python build_scripts/bench.py``, the entry the README names, runs a section."""
    _run(["build_scripts/bench.py", "--quick", "--out", str(tmp_path), "media"])
    assert json.loads((tmp_path / "media.json").read_text())["measures"]


@pytest.mark.slow
def test_widget_gallery_offscreen(tmp_path: Path) -> None:
    _run(["-m", "scripts.widget_gallery", str(tmp_path)])
    shots = {p.stem for p in tmp_path.glob("*.png") if p.stat().st_size > 1000}
    assert {"timeline", "alpha_panel", "preview", "transport", "loss_plot", "together"} <= shots


@pytest.mark.slow
def test_torso_strip_on_the_demo_subject(demo_subject: Path, tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "strip.png"
    _run(["-m", "scripts.torso_strip", str(demo_subject), "--frames", "2", "--out", str(out)])
    strip = cv2.imread(str(out))
    assert strip is not None and strip.shape[1] > strip.shape[0]  # 4 columns side by side, 2 rows


@pytest.mark.slow
def test_table3_on_a_tiny_subject(tmp_path: Path) -> None:
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    subject = write_synthetic(tmp_path / "synth", SynthConfig(seconds=2.0, size=64), False)
    args = ["--steps", "2", "--size", "32", "--out", str(tmp_path / "out")]
    res = _run(["-m", "scripts.table3", "--subject", str(subject.subject_dir), *args])
    rows = json.loads((tmp_path / "out" / "table3.json").read_text())["rows"]
    assert [r["encoding"] for r in rows] == [
        "posenc",
        "mlp",
        "keypoint",
        "gaussian_no_depth",
        "gaussian",
    ]
    assert all(math.isfinite(r["psnr_head"]) for r in rows)
    assert "| Eq. (8a) |" in res.stdout


@pytest.mark.slow
def test_make_demo_writes_fp16_weights_elsewhere(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    steps = ["--stage1-steps", "2", "--head-steps", "2", "--torso-steps", "2"]
    out = tmp_path / "demo"
    _run(["-m", "scripts.make_demo", "--seconds", "2", "--size", "64", *steps, "--out", str(out)])
    assert json.loads((out / "demo.json").read_text())["synth"]["seconds"] == 2.0
    for part in ("stage1", "head", "torso"):
        weights = load_file(str(out / part / "model.safetensors"))
        assert {str(t.dtype) for t in weights.values() if t.is_floating_point()} == {
            "torch.float16"
        }, part
        assert (out / part / "config.json").is_file()


@pytest.mark.slow
def test_screenshots_offscreen(demo_subject: Path, tmp_path: Path) -> None:
    """The main window, export dialog and training wizard shots (no video: its pages skip)."""
    args = ["--subject", str(demo_subject), "--video", str(tmp_path / "none.mp4")]
    _run(["-m", "scripts.screenshots", str(tmp_path / "shots"), *args])
    shots = {p.name for p in (tmp_path / "shots").glob("*.png")}
    assert {"welcome.png", "main_window.png", "export_dialog.png", "wizard_training.png"} <= shots


@pytest.mark.slow
def test_make_prior_on_a_two_clip_corpus(tmp_path: Path) -> None:
    """The prior builder on a corpus of two short real clips (tracked into a temporary cache),
    two training steps, one clip held out for validation: it writes fp16 weights, its recipe and
    the linear part; ``--linear-only`` fits the linear part again, for the same split only."""
    from conftest import shared_data
    from safetensors.torch import load_file

    may = shared_data("May_5s.mp4")  # skips when the footage is absent
    corpus = tmp_path / "corpus"
    for split, names in (("train", ("speaker_a", "speaker_b")), ("test", ())):
        (corpus / split).mkdir(parents=True)
        for name in names:
            (corpus / split / f"{name}.mp4").symlink_to(may)
    out = tmp_path / "prior"
    args = ["--corpus", str(corpus), "--out", str(out), "--steps", "2", "--batch", "2"]
    cache = str(tmp_path / "cache")
    res = _run(
        ["-m", "scripts.make_prior", *args, "--val-speakers", "speaker_b"], TALKSTUDIO_CACHE=cache
    )
    assert "2 clips tracked" in res.stdout
    meta = json.loads((out / "config.json").read_text())
    prior = meta["meta"]["prior"]
    assert prior["clips"] == ["speaker_a"] and prior["recipe"]["steps"] == 2
    assert (out / "linear.safetensors").is_file() and prior["linear"]["context"] == 6
    weights = load_file(str(out / "model.safetensors"))
    assert {str(t.dtype) for t in weights.values() if t.is_floating_point()} == {"torch.float16"}
    assert list((tmp_path / "cache" / "corpus-tracks").glob("speaker_a-*.npz"))

    # the linear part alone, fitted again into the same prior: only for the same split
    (out / "linear.safetensors").unlink()
    only = ["-m", "scripts.make_prior", *args, "--linear-only"]
    res = _run([*only, "--val-speakers", "speaker_b"], TALKSTUDIO_CACHE=cache)
    assert "linear part added" in res.stdout and (out / "linear.safetensors").is_file()
    assert load_file(str(out / "model.safetensors")).keys() == weights.keys()
    other = subprocess.run(
        [sys.executable, *only, "--val-speakers", "speaker_a"],
        cwd=REPO, capture_output=True, text=True, env=dict(os.environ, TALKSTUDIO_CACHE=cache),
    )  # fmt: skip
    assert other.returncode == 1 and "trained on other clips" in other.stdout


def test_every_script_has_a_run_here() -> None:
    """Each script of ``scripts/`` is run by one of this file's tests (``-m scripts.NAME``)."""
    text = Path(__file__).read_text()
    scripts = sorted(p.stem for p in (REPO / "scripts").glob("[!_]*.py"))
    assert scripts, "no scripts found"
    missing = [name for name in scripts if f'"scripts.{name}"' not in text]
    assert not missing, f"scripts without a test here: {missing}"


@pytest.mark.slow
def test_prior_folds_cross_validates_a_recipe(tmp_path: Path) -> None:
    """The cross-validation of a prior recipe on a corpus of three short real clips in two
    folds: each fold builds a prior without its speakers, fine-tunes a subject from it and
    scores its held-out clips; a second run resumes from the results, another recipe in the
    same folder is refused, and two runs compare clip by clip."""
    from _stage1_helpers import write_envelope_subject
    from conftest import shared_data

    may = shared_data("May_5s.mp4")  # skips when the footage is absent
    corpus = tmp_path / "corpus"
    for split, names in (("train", ("speaker_a", "speaker_b", "speaker_c")), ("test", ())):
        (corpus / split).mkdir(parents=True)
        for name in names:
            (corpus / split / f"{name}.mp4").symlink_to(may)
    subject = write_envelope_subject(tmp_path / "subject")
    out = tmp_path / "folds"
    args = ["-m", "scripts.prior_folds", "--corpus", str(corpus), "--subject", str(subject)]
    args += ["--folds", "2", "--finetune-steps", "2"]
    recipe = ["--", "--steps", "2", "--batch", "2", "--variants", "0"]
    cache = str(tmp_path / "cache")
    res = _run([*args, "--out", str(out), *recipe], TALKSTUDIO_CACHE=cache)
    run = json.loads((out / "folds.json").read_text())
    assert sorted(run["clips"]) == ["speaker_a", "speaker_b", "speaker_c"]
    held = [set(f["speakers"]) for f in run["folds"]]
    assert held[0].isdisjoint(held[1]) and held[0] | held[1] == {
        "speaker_a",
        "speaker_b",
        "speaker_c",
    }
    for fold in run["folds"]:  # each prior was built without its fold's speakers
        prior = json.loads((out / f"fold{fold['fold']}" / "prior" / "config.json").read_text())
        assert set(prior["meta"]["prior"]["speakers"]).isdisjoint(fold["speakers"])
    for r in run["clips"].values():
        assert set(r) == {"prior", "alone", "blend"} and all(-1 <= v <= 1 for v in r.values())
    assert "| blend |" in res.stdout

    again = _run([*args, "--out", str(out), *recipe], TALKSTUDIO_CACHE=cache)
    assert "features:" not in again.stdout, "a finished fold is read back, not rebuilt"
    assert json.loads((out / "folds.json").read_text())["clips"] == run["clips"]
    other = subprocess.run(
        [sys.executable, *args, "--out", str(out), "--", "--steps", "3"],
        cwd=REPO, capture_output=True, text=True, env=dict(os.environ, TALKSTUDIO_CACHE=cache),
    )  # fmt: skip
    assert other.returncode != 0 and "holds a run with other options" in other.stderr
    cmp = _run(["-m", "scripts.prior_folds", "--compare", str(out), str(out)])
    assert "| blend |" in cmp.stdout and "+0.000" in cmp.stdout and "0 of 3" in cmp.stdout
    sweep = ["--sweep", str(out), "--corpus", str(corpus), "--blends", "0", "0.3"]
    res = _run(
        ["-m", "scripts.prior_folds", *sweep, "--linears", "0", "0.4", "0.8"],
        TALKSTUDIO_CACHE=cache,
    )
    rows = [line for line in res.stdout.splitlines() if line.startswith("| 0")]
    assert len(rows) == 2 and rows[1].endswith("| – |"), res.stdout  # 0.3 + 0.8 leaves nothing
