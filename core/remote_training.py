"""Training a part of a subject on a Ray cluster, with progress and checkpoints coming back.

``talkstudio train PART SUBJECT --ray auto|local|ADDRESS`` runs the part's ordinary trainer
(the same job generator the CLI and the wizard drive locally) inside a Ray actor:

1. the subject folder is packed into one tar archive and put into Ray's object store (the
   cluster's machines need not share a file system with this one);
2. the actor unpacks it into a temporary folder, starts the trainer in a thread and keeps its
   :class:`~talkstudio.core.progress.Progress` records;
3. this process polls the actor about once a second: the records come back and are yielded as
   if the job ran here, and every new checkpoint (weights + ``config.json`` + optimizer state,
   whose steps agree) comes back as a tar and is written into the subject's model folder, each
   file atomically, weights first and the optimizer state last — what
   :func:`~talkstudio.core.training.restore` expects;
4. when the actor dies (its worker or machine is lost), a new one is started from the subject
   as it is now, so the trainer resumes from the last checkpoint that came back
   (``max_restarts`` times at most);
5. closing the job (Ctrl+C, the wizard's Cancel) asks the actor to close its trainer, which
   saves the step it reached; that checkpoint comes back before the actor is released.

Ray is optional and imported only here; its absence is a clear error.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .atomic import atomic_path
from .errors import TalkstudioError
from .presets import TRAIN_STAGE
from .progress import Job, Progress
from .subject import Subject

CHECKPOINT_ORDER = ("model.safetensors", "config.json")
"""Files of a checkpoint written back first, in this order; the rest (the optimizer state and
whatever else the trainer keeps there) after them."""
POLL_SECONDS = 1.0
MAX_RESTARTS = 3


def trainer(part: str) -> Callable[..., Job[Any]]:
    """The job function ``(subject_dir, config, device)`` that trains ``part``."""
    if part == "stage1":
        from .stage1.train import train_stage1

        return train_stage1
    if part == "head":
        from .head.train import train_head

        return train_head
    if part == "torso":
        from .torso.train import train_torso

        return train_torso
    if part == "refiner":
        from .refiner.train import train_refiner

        return train_refiner
    raise TalkstudioError(f"unknown part {part!r}: stage1, head, torso or refiner")


# -- archives --------------------------------------------------------------------------------------
def pack_folder(folder: Path, top_only: bool = False) -> bytes:
    """The files below ``folder`` (only those directly in it when ``top_only``; paths relative
    to it; hidden ones, e.g. files being written, left out) as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.glob("*") if top_only else folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def unpack_folder(data: bytes, folder: Path) -> None:
    """Extract a :func:`pack_folder` archive into ``folder`` (refusing paths that leave it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(folder, filter="data")


def write_checkpoint(data: bytes, model_dir: Path) -> int:
    """Write a checkpoint archive into ``model_dir``, each file atomically, in the order
    :func:`~talkstudio.core.training.restore` tolerates being stopped in; its step."""
    model_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        bad = [name for name in members if Path(name).name != name]
        if bad:
            raise TalkstudioError(f"a checkpoint from the Ray cluster holds folders: {bad}")
        order = [n for n in CHECKPOINT_ORDER if n in members]
        order += sorted(n for n in members if n not in CHECKPOINT_ORDER)
        for name in order:
            source = tar.extractfile(members[name])
            assert source is not None  # a regular file
            with atomic_path(model_dir / name) as tmp:
                tmp.write_bytes(source.read())
    return checkpoint_step(model_dir) or 0


def checkpoint_step(model_dir: Path) -> int | None:
    """The step of the complete checkpoint in ``model_dir``: the weights' step when the
    optimizer state has the same one; None when there is none, or it is being written."""
    try:
        weights = json.loads((model_dir / "config.json").read_text("utf-8"))
        state = json.loads((model_dir / "train_state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    step = weights.get("meta", {}).get("step")
    return int(step) if step is not None and step == state.get("info", {}).get("step") else None


# -- the actor -------------------------------------------------------------------------------------
@dataclass
class Poll:
    """What one poll of the actor brings back."""

    records: list[Progress]
    checkpoint: bytes | None
    """The part's model folder as a tar, when a newer complete checkpoint is there."""
    state: str
    """"running", "finished", "cancelled" or "failed"."""
    result: Any = None
    error: str = ""


class RemoteTrainer:
    """Runs one part's trainer on a copy of the subject (the body of the Ray actor)."""

    def __init__(self, part: str, subject: bytes, config: Any, device: str, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self._tmp = Path(tempfile.mkdtemp(prefix="talkstudio-train-"))
        root = self._tmp / "subject"
        unpack_folder(subject, root)
        self._model_dir = Subject.open(root).model_dir(part)
        self._sent: int | None = checkpoint_step(self._model_dir)
        self._records: list[Progress] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state, self._result, self._error = "running", None, ""
        self._job = trainer(part)(root, config, device)
        self._thread = threading.Thread(target=self._run, name="talkstudio-train", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        state, result, error = "finished", None, ""
        try:
            while True:
                if self._stop.is_set():
                    self._job.close()  # the trainer saves the step it reached
                    state = "cancelled"
                    break
                try:
                    record = next(self._job)
                except StopIteration as end:
                    result = end.value
                    break
                with self._lock:
                    self._records.append(record)
        except Exception as exc:  # reported to the caller, who raises it there
            state, error = "failed", str(exc) if isinstance(exc, TalkstudioError) else repr(exc)
        with self._lock:
            self._state, self._result, self._error = state, result, error

    def poll(self) -> Poll:
        """Records since the last poll, a newer checkpoint if any, and the state."""
        with self._lock:
            records, self._records = self._records, []
            state, result, error = self._state, self._result, self._error
        checkpoint = None
        step = checkpoint_step(self._model_dir)
        if step is not None and step != self._sent:
            checkpoint = pack_folder(self._model_dir, top_only=True)
            if checkpoint_step(self._model_dir) == step:  # not replaced while packing
                self._sent = step
            else:
                checkpoint = None
        if state != "running" and step is not None and step != self._sent:
            return self.poll()  # the final checkpoint was being replaced: read it again
        return Poll(records, checkpoint, state, result, error)

    def stop(self) -> Poll:
        """Close the trainer (it saves its step), then the last poll."""
        self._stop.set()
        self._thread.join()
        return self.poll()

    def cleanup(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


# -- the caller's side -----------------------------------------------------------------------------
class RayTraining:
    """One training run of ``part`` on a Ray cluster; :meth:`job` is its job generator.

    ``actor`` is the actor of the current attempt (None between attempts).
    """

    def __init__(
        self,
        part: str,
        subject_dir: str | os.PathLike[str],
        config: Any,
        device: str = "cpu",
        address: str = "auto",
        threads: int = 1,
        max_restarts: int = MAX_RESTARTS,
    ) -> None:
        from .parallel_export import connect_ray

        trainer(part)  # an unknown part fails here, before Ray starts
        self.part, self.config, self.device = part, config, device
        self.subject = Subject.open(Path(subject_dir))
        self.model_dir = self.subject.model_dir(part)
        self.threads, self.max_restarts = max(1, threads), max_restarts
        self.ray = connect_ray(address, "training")
        self.actor: Any = None
        self.restarts = 0

    def _start(self) -> None:
        payload = self.ray.put(pack_folder(self.subject.root))
        actor_class = self.ray.remote(num_cpus=self.threads, max_restarts=0)(RemoteTrainer)
        self.actor = actor_class.remote(self.part, payload, self.config, self.device, self.threads)

    def _take(self, poll: Poll) -> None:
        if poll.checkpoint is not None:
            write_checkpoint(poll.checkpoint, self.model_dir)

    def job(self) -> Job[Any]:
        """Yields the remote trainer's records; returns its result with the local model folder."""
        ray = self.ray
        stage = TRAIN_STAGE[self.part]
        self._start()
        try:
            while True:
                try:
                    poll: Poll = ray.get(self.actor.poll.remote())
                except ray.exceptions.RayActorError as err:
                    self.restarts += 1
                    if self.restarts > self.max_restarts:
                        raise TalkstudioError(
                            f"the Ray worker training {self.part} died {self.restarts} times; "
                            f"the last checkpoint is in {self.model_dir}: run the same command "
                            f"to continue ({err})"
                        ) from err
                    step = checkpoint_step(self.model_dir) or 0
                    yield Progress(
                        stage,
                        step,
                        getattr(self.config, "steps", 0),
                        f"the Ray worker was lost: starting again from step {step}",
                    )
                    self._start()
                    continue
                self._take(poll)
                yield from poll.records
                if poll.state == "failed":
                    raise TalkstudioError(
                        f"training {self.part} on the Ray cluster failed: {poll.error}"
                    )
                if poll.state != "running":
                    return self._local(poll.result)
                time.sleep(POLL_SECONDS)
        except GeneratorExit:
            if self.actor is not None:
                # a worker that is gone leaves the last checkpoint that came back
                with contextlib.suppress(ray.exceptions.RayError):
                    self._take(ray.get(self.actor.stop.remote()))
            raise
        finally:
            self._release()

    def _local(self, result: Any) -> Any:
        """The remote result with its model folder replaced by the subject's own."""
        try:
            return replace(result, model_dir=self.model_dir)
        except TypeError:
            return result

    def _release(self) -> None:
        if self.actor is None:
            return
        ray, actor, self.actor = self.ray, self.actor, None
        with contextlib.suppress(Exception):  # the worker may already be gone
            ray.get(actor.cleanup.remote(), timeout=30)
        ray.kill(actor)


def train_on_ray(
    part: str, subject_dir: str | os.PathLike[str], config: Any, **options: Any
) -> Job[Any]:
    """``part``'s training job run on a Ray cluster (see the module docstring); ``options``:
    those of :class:`RayTraining` (``device``, ``address``, ``threads``, ``max_restarts``)."""
    return RayTraining(part, subject_dir, config, **options).job()
