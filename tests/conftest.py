"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path of ``../shared/data/<name>``; skips the calling test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the real-footage data lives in ../shared/data beside the repo")
    return path


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    """Keep torch on the CI machine's two cores without oversubscription."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(2)
