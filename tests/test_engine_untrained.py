"""Opening a partly trained subject names the next training step (stage1 → head → torso)."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkstudio.core.engine import Engine, missing_parts, untrained_message
from talkstudio.core.errors import CheckpointError
from talkstudio.core.subject import Subject


def _mark_trained(root: Path, part: str) -> None:
    """Put the two files that make a part count as trained (their content is not read here)."""
    folder = Subject.open(root).model_dir(part)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "config.json").write_text("{}", "utf-8")


@pytest.mark.parametrize(
    ("trained", "missing", "next_step"),
    [
        ((), ["stage1", "head", "torso"], "stage1"),
        (("stage1",), ["head", "torso"], "head"),
        (("head",), ["stage1", "torso"], "stage1"),
        (("stage1", "head"), ["torso"], "torso"),
    ],
)
def test_the_first_missing_part_is_the_next_step(
    tiny_subject: Path, trained: tuple[str, ...], missing: list[str], next_step: str
) -> None:
    for part in trained:
        _mark_trained(tiny_subject, part)
    subject = Subject.open(tiny_subject)
    assert missing_parts(subject) == missing
    message = untrained_message(subject)
    assert message is not None
    assert f"`talkstudio train {next_step} {tiny_subject}`" in message
    assert "Train or resume a subject" in message
    with pytest.raises(CheckpointError, match=f"train {next_step} "):
        Engine.open(tiny_subject, device="cpu")


def test_head_and_torso_are_enough_to_open(tiny_subject: Path) -> None:
    for part in ("head", "torso"):
        _mark_trained(tiny_subject, part)
    subject = Subject.open(tiny_subject)
    assert missing_parts(subject) == ["stage1"]
    assert untrained_message(subject) is None
