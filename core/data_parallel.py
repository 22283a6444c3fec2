"""Data-parallel training on one machine: a team of processes that take one optimizer step
together.

A NeRF training step is many small tensor operations, so a second torch thread adds little
(about 1.1× on two cores) while a second *process* doing half of the work runs beside the first
almost undisturbed. A :class:`Team` is this process (rank 0, the leader, which yields progress
and saves checkpoints) and ``size - 1`` helper processes started with the ``spawn`` method.
Each member renders its own share of a step, computes the gradients of its part of the loss,
and :meth:`Team.sum_gradients` adds them up over the members through a gloo process group on
the loopback interface, so every member takes the same optimizer step and the models stay equal
without ever being copied after the start.

    team = Team.lead(2, helper_main, (subject_dir, ...), threads=1)   # in the leader
    team = Team.join(rank, size, port)                                 # in a helper
    while team.go(more):                                               # every step, both sides
        ...; stepped, values = team.sum_gradients(params, has_loss, [loss])

The group is private to the team (no ``torch.distributed`` default group is made), so a second
team in the same process, or later, does not clash with it. A helper that fails sends its
traceback to the leader before it exits; the leader raises :class:`TeamError` with it. A
helper ignores Ctrl+C: the leader's job is what a cancel closes, and it stops the helpers.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing as mp
import multiprocessing.connection as mpc
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .errors import TalkstudioError

TIMEOUT = datetime.timedelta(minutes=30)
"""Longest wait for the other members at one collective step (also for the helpers to start).
A member that dies is noticed at once (its connection closes); this bounds only a member that
hangs, or a leader whose progress is not read for that long."""


READY = "ready"
"""What a helper sends the leader once it runs."""


def local_processes(device: torch.device) -> int:
    """Processes worth running side by side for work split across them: two on the CPU when
    torch has at least two threads (they are shared out), else one; one on a GPU."""
    if device.type != "cpu":
        return 1
    return min(2, torch.get_num_threads())


class TeamError(TalkstudioError):
    """A member of a training team failed or disappeared."""


class Team:
    """The members of one data-parallel run, seen from one of them (``rank``).

    A team of one (:meth:`solo`) is the plain single-process case: every method returns at once
    with this process's own values, so a trainer has one code path.
    """

    def __init__(
        self,
        rank: int,
        size: int,
        group: Any = None,
        helpers: Sequence[tuple[Any, mpc.Connection]] = (),
        store: Any = None,
    ) -> None:
        self.rank, self.size = rank, size
        self._group = group
        self._store = store  # the members reach each other through it: keep it alive
        self._helpers = list(helpers)  # (process, pipe) of each helper, in the leader only

    @classmethod
    def solo(cls) -> Team:
        return cls(0, 1)

    @classmethod
    def lead(
        cls,
        size: int,
        target: Callable[..., None],
        args: tuple[Any, ...],
        threads: int = 1,
    ) -> Team:
        """Start ``size - 1`` helpers running ``target(team, *args)`` with ``threads`` torch
        threads each, and form the team with them (this process is rank 0)."""
        if size <= 1:
            return cls.solo()
        import torch.distributed as dist

        store = dist.TCPStore("127.0.0.1", 0, size, True, timeout=TIMEOUT, wait_for_workers=False)
        ctx = mp.get_context("spawn")  # no fork of a process that runs torch threads (or Qt)
        helpers = []
        for rank in range(1, size):
            mine, theirs = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_helper_entry,
                args=(theirs, rank, size, store.port, threads, target, args),
                daemon=True,
                name=f"talkstudio-team-{rank}",
            )
            proc.start()
            theirs.close()
            helpers.append((proc, mine))
        team = cls(0, size, None, helpers, store)
        team._await_helpers()
        with team._collective("starting"):
            team._group = dist.ProcessGroupGloo(store, 0, size, TIMEOUT)
        return team

    @classmethod
    def join(cls, rank: int, size: int, port: int) -> Team:
        """The team as a helper sees it (called in the helper process)."""
        import torch.distributed as dist

        store = dist.TCPStore("127.0.0.1", port, size, False, timeout=TIMEOUT)
        return cls(rank, size, dist.ProcessGroupGloo(store, rank, size, TIMEOUT), store=store)

    # -- collectives --------------------------------------------------------------------------
    def go(self, more: bool = True) -> bool:
        """Whether the team takes another step: the leader's ``more``, told to every member."""
        if self.size == 1:
            return more
        flag = torch.tensor([1.0 if more else 0.0])
        with self._collective("agreeing on the next step"):
            self._group.broadcast([flag], _root(0)).wait()
        return bool(flag[0] > 0)

    def sum_gradients(
        self, params: Sequence[nn.Parameter], has_loss: bool, values: Sequence[float] = ()
    ) -> tuple[bool, list[float]]:
        """Replace each member's gradients of ``params`` by their sum over the members; the sum
        of ``values`` (the members' parts of one loss, say).

        ``has_loss``: whether this member's loss has gradients (it may not: none of its rays
        met an occupied cell). A parameter without a gradient in any member keeps none, as in a
        single process. Returns whether any member had gradients (else: take no optimizer step)
        and the summed ``values``.
        """
        if self.size == 1:
            return has_loss, list(values)
        grads = [p.grad if has_loss else None for p in params]
        sizes = [p.numel() for p in params]
        flat = torch.zeros(sum(sizes) + len(params) + 1 + len(values))
        at = 0
        for g, n in zip(grads, sizes):
            if g is not None:
                flat[at : at + n] = g.reshape(-1)
            at += n
        present = flat[at : at + len(params)]
        present.copy_(torch.tensor([float(g is not None) for g in grads]))
        flat[at + len(params)] = 1.0 if has_loss else 0.0
        flat[at + len(params) + 1 :] = torch.tensor(list(values))
        with self._collective("adding up gradients"):
            self._group.allreduce([flat]).wait()
        at = 0
        for p, n, seen in zip(params, sizes, present.tolist()):
            p.grad = flat[at : at + n].reshape(p.shape).to(p.dtype) if seen > 0 else None
            at += n
        stepped = bool(flat[at + len(params)] > 0)
        return stepped, flat[at + len(params) + 1 :].tolist()

    def maximum_(self, tensor: torch.Tensor) -> None:
        """Replace ``tensor`` (float, on the CPU) by its elementwise maximum over the members."""
        if self.size == 1:
            return
        import torch.distributed as dist

        opts = dist.AllreduceOptions()
        opts.reduceOp = dist.ReduceOp.MAX
        with self._collective("combining the occupancy grid"):
            self._group.allreduce([tensor], opts).wait()

    def share_state(self, module: nn.Module) -> None:
        """Make every member's parameters and buffers of ``module`` the leader's."""
        if self.size == 1:
            return
        with self._collective("sharing the model"), torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                carrier = t.data if t.is_floating_point() else t.data.to(torch.float64)
                self._group.broadcast([carrier], _root(0)).wait()
                if carrier is not t.data:
                    t.data.copy_(carrier.to(t.dtype))

    # -- lifetime -----------------------------------------------------------------------------
    def close(self, clean: bool) -> None:
        """Leader: end the team. ``clean`` (between steps): tell the helpers to stop and wait
        for them; otherwise (an error in the middle of a step) terminate them."""
        if self.rank != 0 or not self._helpers:
            return
        if clean:
            with contextlib.suppress(TeamError):
                self.go(False)
        for proc, pipe in self._helpers:
            proc.join(timeout=30 if clean else 0.1)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            pipe.close()
        self._helpers = []

    def _await_helpers(self) -> None:
        """Wait until every helper has started (it says so through its pipe); a helper that dies
        first (its module failed to import, say) ends the team with :class:`TeamError`."""
        deadline = time.monotonic() + TIMEOUT.total_seconds()
        waiting = list(self._helpers)
        while waiting:
            for proc, pipe in list(waiting):
                if pipe.poll(0.1):
                    try:
                        message = pipe.recv()
                    except (EOFError, OSError):  # it closed its end: it died
                        message = ""
                    if message != READY:
                        self.close(clean=False)
                        why = f"failed:\n{message}" if message else "stopped"
                        raise TeamError(f"a helper training process {why} as it started")
                    waiting.remove((proc, pipe))
                elif not proc.is_alive() or time.monotonic() > deadline:
                    code = proc.exitcode
                    self.close(clean=False)
                    raise TeamError(f"a helper training process did not start (exit code {code})")

    @contextlib.contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        try:
            yield
        except (RuntimeError, ValueError) as exc:  # gloo: a peer closed, timed out or failed
            raise TeamError(self._failure(what, exc)) from exc

    def _failure(self, what: str, exc: BaseException) -> str:
        for proc, pipe in self._helpers:
            text = ""
            with contextlib.suppress(EOFError, OSError):
                if pipe.poll(2.0):
                    text = pipe.recv()
            if text or not proc.is_alive():
                code = proc.exitcode
                why = f"failed:\n{text}" if text else f"stopped (exit code {code})"
                return f"a helper training process {why}"
        return f"the training team failed while {what}: {exc}"


def _root(rank: int) -> Any:
    import torch.distributed as dist

    opts = dist.BroadcastOptions()
    opts.rootRank = rank
    return opts


def _helper_entry(
    pipe: mpc.Connection,
    rank: int,
    size: int,
    port: int,
    threads: int,
    target: Callable[..., None],
    args: tuple[Any, ...],
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the leader, which stops us
    torch.set_num_threads(max(threads, 1))
    try:
        pipe.send(READY)
        target(Team.join(rank, size, port), *args)
    except BaseException:  # whatever it is, the leader must learn why
        with contextlib.suppress(OSError):
            pipe.send(traceback.format_exc())
        raise SystemExit(1) from None
    finally:
        pipe.close()
