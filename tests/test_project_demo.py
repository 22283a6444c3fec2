"""Projects name the built-in demo as "the demo", resolved when they are opened."""

from __future__ import annotations

import json
from pathlib import Path

from talkstudio.core.demo import DEMO_REFERENCE, demo_built, demo_target, is_demo_subject
from talkstudio.core.edit import Edits
from talkstudio.core.project import Project


def test_demo_project_stores_the_reference_and_follows_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TALKSTUDIO_CACHE", str(tmp_path / "cache-a"))
    target = demo_target()
    assert target.parent == tmp_path / "cache-a" and not demo_built()
    assert is_demo_subject(target)  # where the demo goes, built or not (it can be rebuilt)
    edits = Edits.constant(mouth=1.5)
    path = Project(target, None, edits).save(tmp_path / "p" / "talk")
    raw = json.loads(path.read_text("utf-8"))
    assert raw["subject"] == DEMO_REFERENCE  # not ../cache-a/demo-<hash>

    # Another cache (a clean-up, another machine): the same project finds the demo there.
    monkeypatch.setenv("TALKSTUDIO_CACHE", str(tmp_path / "cache-b"))
    again = Project.load(path)
    assert again.demo and again.uses_demo
    assert again.subject == demo_target() and again.subject.parent == tmp_path / "cache-b"
    assert again.edits.alphas_at(0).tolist() == [1.0, 1.0, 1.5]
    # Saving it again keeps the reference.
    assert json.loads(again.save(path).read_text("utf-8"))["subject"] == DEMO_REFERENCE


def test_demo_copies_elsewhere_and_ordinary_subjects_keep_their_paths(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TALKSTUDIO_CACHE", str(tmp_path / "cache"))
    elsewhere = tmp_path / "tests-cache" / demo_target().name
    elsewhere.mkdir(parents=True)
    assert not is_demo_subject(elsewhere)  # a copy outside the cache is a subject folder
    saved = Project(elsewhere).save(tmp_path / "a")
    assert json.loads(saved.read_text())["subject"] == str(Path("tests-cache") / elsewhere.name)
    assert Project.load(saved).subject == elsewhere and not Project.load(saved).uses_demo
    assert not is_demo_subject(tmp_path / "cache" / "demo-notahash")
    mine = tmp_path / "subjects" / "anna"
    mine.mkdir(parents=True)
    assert not is_demo_subject(mine)
    saved = Project(mine).save(tmp_path / "b.talkproj")
    assert json.loads(saved.read_text())["subject"] == str(Path("subjects") / "anna")
    assert not Project.load(saved).uses_demo
