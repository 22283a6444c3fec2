"""The distribution: every subpackage listed, a normal (non-editable) install works."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAPPING = {
    "core": "talkstudio.core",
    "app": "talkstudio.app",
    "widgets": "talkstudio.widgets",
    "resources": "talkstudio.resources",
}


def test_every_subpackage_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for folder, dotted in MAPPING.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            on_disk.add(".".join((dotted, *rel)))
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.slow
def test_wheel_installs_and_imports(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("talkstudio-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops <= {
        "talkstudio",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    assert "talkstudio/core/subject.py" in names
    assert "talkstudio/app/cli.py" in names
    target = tmp_path / "site"
    inst = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert inst.returncode == 0, inst.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(target))
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import talkstudio.core.subject as s, talkstudio.app.cli as c; print(s.__file__); c.build_parser()",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(target))
