"""Parallel export: the frames rendered by local worker processes or Ray tasks, streamed into the
one encoder, give the serial export's video frame for frame, with its audio; a worker killed
mid-export is replaced and its frames rendered again; a cancel stops every worker and leaves no
file. The demo subject at 64², driven by 12 frames (0.48 s) of its own speech."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from talkstudio.core.errors import TalkstudioError
from talkstudio.core.progress import run_job
from talkstudio.core.timing import FPS, SAMPLES_PER_FRAME

SIZE = 64
FRAMES = 12
SECONDS = FRAMES / FPS

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds and kills worker processes via /proc"
)


@pytest.fixture(scope="module")
def engine(demo_subject: Path):
    import torch

    from talkstudio.core.engine import Engine

    torch.set_num_threads(1)  # the workers render with one thread each, as the reference does
    engine = Engine.open(demo_subject, device="cpu")
    engine.drive(engine.subject.load_audio()[: FRAMES * SAMPLES_PER_FRAME])
    return engine


@pytest.fixture(scope="module")
def serial(engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """The serial export's decoded frames [T, S, S, 3] and audio [C, S]."""
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("serial") / "serial.mp4"
    run_job(engine.export(out, size=SIZE))
    frames, audio = _decode(out)
    assert len(frames) == engine.num_frames == 12
    return frames, audio


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    return np.stack(frames), audio


def _assert_equal_video(path: Path, serial: tuple[np.ndarray, np.ndarray]) -> None:
    frames, audio = _decode(path)
    assert frames.shape == serial[0].shape
    for i, (got, want) in enumerate(zip(frames, serial[0])):
        assert np.array_equal(got, want), f"frame {i} differs from the serial export's"
    assert audio.shape == serial[1].shape and np.array_equal(audio, serial[1])
    with av.open(str(path)) as container:  # both streams start together and end together
        video, sound = container.streams.video[0], container.streams.audio[0]
        v_end = float(video.duration * video.time_base)
        a_end = float(sound.duration * sound.time_base)
    assert abs(v_end - SECONDS) < 1e-6 and abs(a_end - SECONDS) < 0.07


def _children() -> list[int]:
    """The export worker processes of this process (spawned Pythons, not the resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"spawn_main" in cmd:
            pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_two_workers_equal_serial(engine, serial, tmp_path: Path) -> None:
    out = tmp_path / "two.mp4"
    steps = [p.step for p in engine.export(out, size=SIZE, workers=2, threads=1)]
    assert steps == list(range(1, 13))
    _assert_equal_video(out, serial)
    assert _leftovers(tmp_path) == ["two.mp4"]
    assert not any(_alive(pid) for pid in _children()), "workers outlived the export"


def test_cancel_stops_workers_and_leaves_no_file(engine, tmp_path: Path) -> None:
    out = tmp_path / "cancelled.mp4"
    job = engine.export(out, size=SIZE, workers=2, threads=1)
    next(job)
    workers = _children()
    assert len(workers) == 2, f"expected two worker processes, found {workers}"
    job.close()  # what the studio's cancel does
    assert _leftovers(tmp_path) == [], "a cancelled export left files behind"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "cancel left workers running"


def test_killed_workers_are_replaced(engine, serial, tmp_path: Path) -> None:
    out = tmp_path / "killed.mp4"
    job = engine.export(out, size=SIZE, workers=2, threads=1)
    first = next(job)
    assert first.step == 1
    victims = _children()
    assert len(victims) == 2
    for pid in victims:  # both, mid-chunk: 12 frames make six chunks of two
        os.kill(pid, signal.SIGKILL)
    steps = [first.step] + [p.step for p in job]
    assert steps == list(range(1, 13))
    _assert_equal_video(out, serial)
    assert not set(victims) & set(_children())
    assert _leftovers(tmp_path) == ["killed.mp4"]


def test_bad_worker_count_is_refused(engine, tmp_path: Path) -> None:
    with pytest.raises(TalkstudioError, match="workers must be 1 or more"):
        next(engine.export(tmp_path / "x.mp4", size=SIZE, workers=0))
    assert _leftovers(tmp_path) == []


# -- Ray ----------------------------------------------------------------------------------------
def _ray_task_pids() -> list[int]:
    """Ray worker processes running an export chunk now (Ray titles them after the task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_ray_chunk"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_ray_tasks_equal_serial(engine, serial, ray_cluster, tmp_path: Path) -> None:
    out = tmp_path / "ray.mp4"
    steps = [p.step for p in engine.export(out, size=SIZE, ray="auto")]
    assert steps == list(range(1, 13))
    _assert_equal_video(out, serial)
    assert _leftovers(tmp_path) == ["ray.mp4"]


def test_ray_worker_killed_mid_export(engine, serial, ray_cluster, tmp_path: Path) -> None:
    out = tmp_path / "ray_killed.mp4"
    job = engine.export(out, size=SIZE, ray="auto")
    first = next(job)  # the first chunk is back; the next ones are running
    deadline = time.monotonic() + 30
    while not (running := _ray_task_pids()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running, "no Ray worker was rendering a chunk to kill"
    os.kill(running[0], signal.SIGKILL)
    steps = [first.step] + [p.step for p in job]
    assert steps == list(range(1, 13))
    _assert_equal_video(out, serial)
    assert _leftovers(tmp_path) == ["ray_killed.mp4"]


def test_missing_ray_is_a_clear_error(engine, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(TalkstudioError, match=r'pip install "ray==2\.60\.\*"'):
        next(engine.export(tmp_path / "x.mp4", size=SIZE, ray="auto"))
    assert _leftovers(tmp_path) == []


def test_ray_cancel_stops_tasks_and_leaves_no_file(engine, ray_cluster, tmp_path: Path) -> None:
    out = tmp_path / "ray_cancelled.mp4"
    job = engine.export(out, size=SIZE, ray="auto")
    next(job)
    job.close()
    assert _leftovers(tmp_path) == [], "a cancelled export left files behind"
    deadline = time.monotonic() + 20
    while _ray_task_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _ray_task_pids(), "cancel left Ray tasks rendering"
