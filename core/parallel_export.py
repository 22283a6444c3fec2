"""Rendering an export's frames in several processes, on this machine or on a Ray cluster.

An export's frames are independent: frame ``i`` depends only on the driving track, its edit
α and the trained models. :func:`render_frames` splits the frame range into chunks of
consecutive frames and renders them elsewhere — in ``workers`` local processes (each with its
own torch threads), or as Ray tasks (``ray="auto"`` or a cluster address) — and yields the
frames back **in order**, so that the caller streams them into one encoder. The video is
therefore encoded exactly as a serial export encodes it: the same frames, the same encoder, the
same audio muxed at the same time stamps (docs/design.md "Time"), no joining of separately
encoded pieces and no re-encoding.

Faults: a local worker process that dies (killed, out of memory, a crash) while rendering a
chunk is replaced and the frames of its chunk that had not come back are rendered again, up to
``MAX_RETRIES`` times per chunk; a Ray task whose worker dies is retried by Ray (``max_retries``)
as long as the cluster has room. An exception raised by the rendering code itself is not a
fault of the machine: it is raised in the caller with the worker's traceback, without retries.

Cancel: closing the generator (the export job's cancel) kills every local worker at once, or
cancels every Ray task in flight; the encoder in the caller then removes its temporary file
(see core/media/encode.py), so nothing appears under the target name. Workers write no files.

Ray is optional: it is imported only when ``ray`` is given, and its absence is a clear error
saying how to install it. A Ray worker opens the subject from the same path as this process:
on a multi-machine cluster, the subject folder must be reachable under that path on every node
(a shared or synced folder).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import TalkstudioError

if TYPE_CHECKING:
    from .driving import DrivingTrack
    from .edit import FrameEdit
    from .engine import Engine

MAX_RETRIES = 2
"""Times the frames of one chunk are rendered again after their worker died."""
MAX_CHUNK = 25
"""Most frames in one chunk (one second of video)."""
RAY_INSTALL = 'pip install "ray==2.60.*"  (or the optional extra: pip install "talkstudio[ray]")'


@dataclass(frozen=True)
class RenderSpec:
    """What a worker needs to render frames of an export, independent of the caller's engine:
    the subject (opened by path), the device, the driving track and each frame's edit."""

    subject_dir: str
    device: str
    track: DrivingTrack
    alphas: dict[int, FrameEdit]
    size: int
    with_opacity: bool = False
    """Frames come back [S, S, 4] with the head's opacity (for paste-back, core/framing.py)."""
    refine: bool = True
    """Whether the worker's engine uses the subject's refiner (as the caller's engine does)."""
    token: str = field(default_factory=lambda: os.urandom(8).hex())
    """Identifies this export: a Ray worker keeps the engine of the last export it served."""

    @classmethod
    def of(
        cls,
        engine: Engine,
        alphas: dict[int, FrameEdit],
        size: int,
        with_opacity: bool = False,
    ) -> RenderSpec:
        if engine.track is None:
            raise TalkstudioError("the engine is not driven: call drive() or replay() first")
        return cls(
            str(engine.subject.root),
            str(engine.device),
            engine.track,
            alphas,
            size,
            with_opacity,
            refine=engine.refiner is not None,
        )


def chunk_frames(frames: Sequence[int], parallel: int, most: int = MAX_CHUNK) -> list[list[int]]:
    """``frames`` split into consecutive chunks, about four a worker (for balance) and at most
    ``most`` frames each (so that frames come back early and in order)."""
    if not frames:
        return []
    size = max(1, min(most, math.ceil(len(frames) / (4 * max(parallel, 1)))))
    return [list(frames[i : i + size]) for i in range(0, len(frames), size)]


def render_frames(
    spec: RenderSpec,
    frames: Sequence[int],
    workers: int = 1,
    ray: str | None = None,
    threads: int | None = None,
) -> Iterator[np.ndarray]:
    """The frames ``frames`` of ``spec`` as uint8 [S, S, 3] arrays ([S, S, 4] with the head's
    opacity when ``spec.with_opacity``), in order, rendered by
    ``workers`` local processes with ``threads`` torch threads each (default: this process's
    threads shared out), or, with ``ray`` ("auto" or an address), as Ray tasks of ``threads``
    CPUs each (default 1). Closing the generator stops every worker."""
    if ray is not None:
        yield from _render_ray(spec, frames, ray, threads or 1)
        return
    if workers < 1:
        raise TalkstudioError(f"workers must be 1 or more, got {workers}")
    if threads is None:
        import torch

        threads = max(1, torch.get_num_threads() // workers)
    yield from _render_local(spec, frames, workers, threads)


# -- the rendering itself (in a worker) ----------------------------------------------------------
def _open_engine(spec: RenderSpec) -> Engine:
    from .engine import Engine

    if not Path(spec.subject_dir).is_dir():
        raise TalkstudioError(
            f"the subject {spec.subject_dir} does not exist on this worker "
            f"({os.uname().nodename}): every machine of the cluster must reach the subject "
            "folder under the same path"
        )
    engine = Engine.open(spec.subject_dir, device=spec.device, refine=spec.refine)
    engine.track = spec.track
    engine._clear_caches()
    return engine


def _render_one(engine: Engine, spec: RenderSpec, frame: int) -> np.ndarray:
    return engine._full_frame(
        frame, spec.alphas[frame], spec.size, keep=False, with_opacity=spec.with_opacity
    )


# -- local processes -------------------------------------------------------------------------------
def _local_worker(conn: mpc.Connection, spec: RenderSpec, threads: int) -> None:
    """A worker process: open the engine, then render the chunks it is sent until told to stop
    (``None``). Sends ``("frame", i, rgb)`` per frame, ``("done",)`` per chunk, ``("error",
    text)`` when rendering raised."""
    import torch

    torch.set_num_threads(threads)
    try:
        engine = _open_engine(spec)
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            for i in chunk:
                conn.send(("frame", i, _render_one(engine, spec, i)))
            conn.send(("done",))
    except (EOFError, BrokenPipeError):  # the parent is gone
        return
    except Exception:
        conn.send(("error", traceback.format_exc()))


@dataclass
class _Worker:
    process: Any  # multiprocessing's SpawnProcess
    conn: mpc.Connection
    chunk: list[int] = field(default_factory=list)
    """Frames of the current chunk that have not come back yet."""
    deaths: int = 0
    """How often the frames of the current chunk lost their worker."""
    busy: bool = False


def _render_local(
    spec: RenderSpec, frames: Sequence[int], workers: int, threads: int
) -> Iterator[np.ndarray]:
    ctx = mp.get_context("spawn")  # no fork of a process that runs torch threads (or Qt)
    todo: deque[tuple[list[int], int]] = deque(
        (chunk, 0) for chunk in chunk_frames(frames, workers)
    )
    workers = min(workers, len(todo))
    pool: list[_Worker] = []
    done: dict[int, np.ndarray] = {}
    order = list(frames)
    nxt = 0

    def start() -> _Worker:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_local_worker, args=(child, spec, threads), name="talkstudio-export"
        )
        proc.daemon = True
        proc.start()
        child.close()
        return _Worker(proc, parent)

    try:
        pool.extend(start() for _ in range(workers))
        while nxt < len(order):
            for w in pool:
                if not w.busy and todo:
                    w.chunk, w.deaths = todo.popleft()
                    w.chunk = list(w.chunk)
                    w.busy = True
                    with contextlib.suppress(OSError):  # a dead worker: its sentinel says so
                        w.conn.send(w.chunk)
            ready = mpc.wait([w.conn for w in pool] + [w.process.sentinel for w in pool])
            for k, w in enumerate(list(pool)):
                if w.conn not in ready and w.process.sentinel not in ready:
                    continue
                try:  # what it sent (all of it, when it has exited since)
                    while w.conn.poll():
                        _take(w, w.conn.recv(), done)
                except (EOFError, OSError):
                    pass  # its end of the pipe is closed: it died
                if w.process.is_alive():
                    continue
                # during the export a worker only exits when it dies: render its chunk again
                w.process.join(timeout=5)
                code = w.process.exitcode
                w.conn.close()
                if w.busy and w.chunk:
                    if w.deaths >= MAX_RETRIES:
                        raise TalkstudioError(
                            f"export worker died {w.deaths + 1} times rendering frames "
                            f"{w.chunk[0]}..{w.chunk[-1]} (last exit code {code}); is the "
                            "machine out of memory? Try fewer --workers or a smaller size"
                        )
                    todo.appendleft((w.chunk, w.deaths + 1))
                pool[k] = start()
            while nxt < len(order) and order[nxt] in done:
                yield done.pop(order[nxt])
                nxt += 1
    finally:
        _stop_local(pool, clean=nxt >= len(order))


def _take(w: _Worker, msg: tuple[Any, ...], done: dict[int, np.ndarray]) -> None:
    kind = msg[0]
    if kind == "frame":
        done[msg[1]] = msg[2]
        w.chunk.remove(msg[1])
    elif kind == "done":
        w.busy, w.chunk = False, []
    else:
        raise TalkstudioError(f"an export worker failed:\n{msg[1]}")


def _stop_local(pool: list[_Worker], clean: bool) -> None:
    """Ask idle workers to stop after a finished export; kill them all otherwise (cancel, error)."""
    for w in pool:
        if clean:
            try:
                w.conn.send(None)
            except OSError:
                w.process.kill()
        else:
            w.process.kill()
    for w in pool:
        w.process.join(timeout=10)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
        w.conn.close()


# -- Ray -------------------------------------------------------------------------------------------
_RAY_ENGINE: tuple[str, Engine] | None = None
"""The engine a Ray worker process opened for the export it served last (token, engine)."""


def _ray_chunk(spec: RenderSpec, chunk: list[int], threads: int) -> np.ndarray:
    """A Ray task: the frames ``chunk`` of ``spec`` as uint8 [n, S, S, 3]."""
    global _RAY_ENGINE
    import torch

    torch.set_num_threads(threads)
    if _RAY_ENGINE is None or _RAY_ENGINE[0] != spec.token:
        _RAY_ENGINE = (spec.token, _open_engine(spec))
    engine = _RAY_ENGINE[1]
    return np.stack([_render_one(engine, spec, i) for i in chunk])


def import_ray(what: str = "rendering") -> Any:
    """The ``ray`` module, or a :class:`TalkstudioError` saying how to install it (``what``:
    the work that needs it, for the message)."""
    try:
        import ray
    except ImportError as err:
        raise TalkstudioError(
            f"{what} on a Ray cluster needs Ray, which is not installed: {RAY_INSTALL}"
        ) from err
    return ray


def connect_ray(address: str, what: str = "rendering") -> Any:
    """Ray, connected: to the cluster this process already joined, else to ``address``
    ("auto": the cluster started on this machine with `ray start --head`, or $RAY_ADDRESS;
    "local": a new one-machine cluster for this process)."""
    ray = import_ray(what)
    if ray.is_initialized():
        return ray
    try:
        if address == "local":
            ray.init()
        else:
            ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise TalkstudioError(
            f"cannot connect to the Ray cluster {address!r}: {str(err).rstrip('.')}. Start one with "
            "`ray start --head` (then use --ray auto), give its address (--ray HOST:6379 or "
            "ray://HOST:10001), or use --ray local for a cluster on this machine only"
        ) from err
    return ray


def _render_ray(
    spec: RenderSpec, frames: Sequence[int], address: str, threads: int
) -> Iterator[np.ndarray]:
    ray = connect_ray(address)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    task = ray.remote(num_cpus=threads, max_retries=MAX_RETRIES + 1)(_ray_chunk)
    spec_ref = ray.put(spec)
    todo = deque(chunk_frames(frames, cpus))
    window = 2 * cpus  # chunks in flight: every CPU busy, and a bounded backlog of results
    flight: deque[Any] = deque()
    try:
        while todo or flight:
            while todo and len(flight) < window:
                flight.append(task.remote(spec_ref, todo.popleft(), threads))
            try:
                rgb = ray.get(flight[0])
            except ray.exceptions.RayTaskError as err:
                raise TalkstudioError(f"a Ray export task failed: {err}") from err
            except ray.exceptions.RayError as err:
                raise TalkstudioError(
                    f"a Ray export task was lost after {MAX_RETRIES + 1} retries: {err}"
                ) from err
            flight.popleft()
            yield from rgb
    finally:
        for ref in flight:
            ray.cancel(ref, force=True)
