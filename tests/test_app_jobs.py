"""JobRunner: a job generator runs in a worker thread, reports in the GUI thread, cancels there."""

from __future__ import annotations

import threading

from _app_helpers import settings_at

from talkstudio.app.jobs import JobRunner, describe_error
from talkstudio.core.errors import SubjectError
from talkstudio.core.progress import Progress


def counting_job(steps: int, log: dict):
    """A job that records the threads it runs and cleans up in, and returns the sum of steps."""
    log["made_in"] = threading.current_thread()
    total = 0
    try:
        for i in range(1, steps + 1):
            log.setdefault("ran_in", set()).add(threading.current_thread())
            total += i
            yield Progress("count", i, steps, f"step {i}")
    finally:
        log["closed_in"] = threading.current_thread()
    return total


def test_job_runs_off_the_gui_thread_and_returns(qtbot, tmp_path) -> None:
    settings_at(tmp_path)  # the PySide6 refcount guard
    log: dict = {}
    job = JobRunner(lambda: counting_job(20, log), "count")
    records = []
    job.progress.connect(records.append)
    with qtbot.waitSignal(job.done, timeout=10_000):
        job.start()
    gui = threading.current_thread()
    assert job.outcome == "finished" and job.result == sum(range(1, 21))
    assert [r.step for r in records] == list(range(1, 21))
    assert log["made_in"] is not gui and log["ran_in"] == {log["made_in"]}
    assert not job.job_thread.isRunning()


def test_cancel_closes_the_generator_in_its_thread(qtbot, tmp_path) -> None:
    settings_at(tmp_path)
    log: dict = {}
    job = JobRunner(lambda: counting_job(10_000, log), "count")
    seen = []

    def progress(p: Progress) -> None:
        seen.append(p.step)
        if p.step == 3:
            job.cancel()

    job.progress.connect(progress)
    with qtbot.waitSignal(job.cancelled, timeout=10_000):
        job.start()
    qtbot.waitUntil(lambda: job.outcome == "cancelled")
    assert max(seen) < 10_000
    assert log["closed_in"] is log["made_in"] is not threading.current_thread()


def test_errors_arrive_as_exceptions(qtbot, tmp_path) -> None:
    settings_at(tmp_path)

    def broken():
        yield Progress("x", 1, 2)
        raise SubjectError("the subject folder is damaged: tracks.npz is missing")

    job = JobRunner(broken, "broken")
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert isinstance(failed.args[0], SubjectError)
    assert describe_error(failed.args[0]) == "the subject folder is damaged: tracks.npz is missing"
    qtbot.waitUntil(lambda: job.outcome == "failed")
    assert job.error is failed.args[0]

    job = JobRunner(lambda: 1 / 0, "no-generator")  # the factory itself fails
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert isinstance(failed.args[0], ZeroDivisionError)
    assert describe_error(failed.args[0]).startswith("ZeroDivisionError")
