"""Transport: play/pause/loop/step through the real buttons; audio or silent playback."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from conftest import show_widget
from PySide6.QtCore import Qt

from talkstudio.widgets.state import EditState, PlaybackState
from talkstudio.widgets.transport import SILENT_TEXT, Transport, format_time, write_wav

# QtMultimedia reports, once per process, the optional system libraries it did not find
# (PipeWire, VA-API) and that no PulseAudio server answers: platform facts of a headless machine.
pytestmark = pytest.mark.qt_log_ignore(
    r"Couldn't (load|resolve) (pipewire|va)", r"PulseAudioService: pa_context_connect\(\) failed"
)


@pytest.fixture
def setup(qtbot) -> tuple[EditState, PlaybackState, Transport]:
    state = EditState()
    t = np.arange(16000 * 2) / 16000  # 2 s: 50 frames
    state.set_audio((0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    playback = PlaybackState(state)
    return state, playback, show_widget(qtbot, Transport(state, playback))


def test_audio_device_or_says_it_plays_silently(setup) -> None:
    from PySide6.QtMultimedia import QMediaDevices

    _, _, transport = setup
    if QMediaDevices.audioOutputs():
        assert transport.audio_label.text().startswith("audio: ")
        assert not transport.audio.silent
    else:
        assert transport.audio_label.text() == SILENT_TEXT
        assert SILENT_TEXT in transport.play_button.toolTip()
        assert transport.audio.silent


def test_play_button_plays_in_real_time_and_pauses(qtbot, setup) -> None:
    state, playback, transport = setup
    qtbot.mouseClick(transport.play_button, Qt.MouseButton.LeftButton)
    assert playback.playing
    qtbot.waitUntil(lambda: state.frame >= 5, timeout=3000)
    assert "Pause" in transport.play_button.toolTip()
    qtbot.mouseClick(transport.play_button, Qt.MouseButton.LeftButton)
    assert not playback.playing
    stopped_at = state.frame
    qtbot.wait(200)
    assert state.frame == stopped_at
    assert transport.time_label.text().endswith(f"frame {stopped_at} / 49")


def test_loop_and_frame_step_buttons(qtbot, setup) -> None:
    state, playback, transport = setup
    qtbot.mouseClick(transport.loop_button, Qt.MouseButton.LeftButton)
    assert playback.loop and transport.loop_button.isChecked()
    state.set_frame(47)
    qtbot.mouseClick(transport.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: 0 < state.frame < 40, timeout=3000)  # wrapped to the start
    assert playback.playing
    qtbot.mouseClick(transport.forward_button, Qt.MouseButton.LeftButton)  # a step pauses
    assert not playback.playing
    here = state.frame
    qtbot.mouseClick(transport.forward_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(transport.forward_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(transport.back_button, Qt.MouseButton.LeftButton)
    assert state.frame == here + 1
    assert transport.time_label.text() == (
        f"{format_time((here + 1) / 25)} / 0:02.00   frame {here + 1} / 49"
    )


def test_wav_written_for_the_player_holds_the_samples(tmp_path) -> None:
    samples = np.sin(np.linspace(0, 40, 1000)).astype(np.float32) * 0.5
    path = tmp_path / "a.wav"
    write_wav(path, samples, 16000)
    with wave.open(str(path)) as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 16000)
        back = np.frombuffer(f.readframes(f.getnframes()), "<i2") / 32767.0
    np.testing.assert_allclose(back, samples, atol=1 / 32767)


def test_format_time() -> None:
    assert format_time(0) == "0:00.00"
    assert format_time(65.5) == "1:05.50"


def test_a_narrow_transport_keeps_the_frame_counter_whole(qtbot, setup) -> None:
    """The audio line ends in "…" rather than covering the time and frame counter."""
    state, _, transport = setup
    state.set_frame(37)
    transport.audio._set_status(SILENT_TEXT)  # what a machine without an audio device shows
    transport.resize(1200, transport.height())
    qtbot.waitUntil(lambda: transport.width() == 1200)
    assert transport.audio_label.shown_text() == SILENT_TEXT
    narrow = transport.minimumSizeHint().width() + 40
    assert narrow < 560  # what is left beside the docks of a 1024-pixel window
    transport.resize(narrow, transport.height())
    qtbot.waitUntil(lambda: transport.width() == narrow)
    time, audio = transport.time_label.geometry(), transport.audio_label.geometry()
    assert transport.time_label.width() >= transport.time_label.sizeHint().width()
    assert time.right() < audio.left() and audio.right() <= transport.width()
    assert transport.time_label.text().endswith("frame 37 / 49")
    shown = transport.audio_label.shown_text()
    assert shown.endswith("…") and len(shown) < len(SILENT_TEXT)
    assert transport.audio_label.text() == transport.audio_label.toolTip() == SILENT_TEXT
