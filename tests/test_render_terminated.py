"""``talkstudio render`` stopped by SIGTERM or SIGINT mid-export leaves nothing beside its target:
the signal unwinds the command and the MP4's temporary is removed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import render_command


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signalled_render_leaves_no_part_file(
    demo_subject: Path, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    target = tmp_path / "take.mp4"
    render = subprocess.Popen(
        render_command(demo_subject, demo_subject / "audio.wav", target, "--threads", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        # a job started in the background of a shell (as CI may be) ignores SIGINT, and so would
        # its children: the render gets the default handling, as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while not any(tmp_path.glob(".take.mp4.*.part.mp4")):  # the export has begun
            assert render.poll() is None, render.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the render never started writing"
            time.sleep(0.05)
        render.send_signal(sig)
        _, err = render.communicate(timeout=120)
    finally:
        if render.poll() is None:
            render.kill()
            render.wait()
    assert render.returncode == code, err[-2000:]
    assert "nothing half-written was kept" in err
    assert list(tmp_path.iterdir()) == []
