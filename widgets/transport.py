"""Transport controls: play/pause, loop, frame step, the time, and the driving audio's sound.

:class:`AudioPlayback` plays the state's driving audio through QtMultimedia (``QMediaPlayer`` and
``QAudioOutput`` on a WAV written from the 16 kHz samples, so what is heard is exactly what drives
the frames). It follows :class:`~.state.PlaybackState`: starts and pauses with it and seeks where
it (re)starts. Without an audio output device the frames still play in real time, silently, on
the playback state's timer, and the transport says so. QtMultimedia is imported only when audio
is given, so the module costs nothing at start-up.
"""

from __future__ import annotations

import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QStyle, QToolButton, QWidget

from .icons import themed_icon
from .state import EditState, PlaybackState

SILENT_TEXT = "no audio device: playing silently"


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write mono float ``samples`` [S] in [-1, 1] as 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


class AudioPlayback(QObject):
    """Sound for a :class:`PlaybackState`, or silence when no audio output exists."""

    statusChanged = Signal(str)  # noqa: N815 (Qt signal naming)
    """A line for the user: the output device, no audio, or playing silently."""

    def __init__(self, playback: PlaybackState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.playback = playback
        self._dir = tempfile.TemporaryDirectory(prefix="talkstudio-audio-")
        self._player: Any = None  # QMediaPlayer, created when a device exists
        self._output: Any = None  # QAudioOutput
        self._wav: Path | None = None
        self._written = False
        self.status = "no audio"
        self.silent = True
        playback.edit.audioChanged.connect(self._audio_changed)
        playback.playingChanged.connect(self._playing_changed)
        playback.seeked.connect(self._seek)
        self._audio_changed()

    def _set_status(self, text: str) -> None:
        self.status = text
        self.statusChanged.emit(text)

    def _audio_changed(self) -> None:
        audio = self.playback.edit.audio
        if self._player is not None:
            self._player.stop()
        self._written = False
        if audio is None or len(audio) == 0:
            self._wav = None
            self.silent = True
            self._set_status("no audio")
            return
        self._wav = Path(self._dir.name) / f"driving-{id(audio):x}.wav"
        from PySide6.QtMultimedia import QMediaDevices

        devices = QMediaDevices.audioOutputs()
        if not devices:
            self.silent = True
            self._set_status(SILENT_TEXT)
            return
        self.silent = False
        device = QMediaDevices.defaultAudioOutput()
        self._ensure_player(device)
        self._set_status(f"audio: {device.description()}")

    def _ensure_player(self, device: Any) -> None:
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

        if self._player is None:
            self._output = QAudioOutput(device, self)
            self._player = QMediaPlayer(self)
            self._player.setAudioOutput(self._output)

    def _write(self) -> None:
        if self._written or self._wav is None or self.playback.edit.audio is None:
            return
        write_wav(self._wav, self.playback.edit.audio, self.playback.edit.sample_rate)
        self._player.setSource(QUrl.fromLocalFile(str(self._wav)))
        self._written = True

    def _playing_changed(self, playing: bool) -> None:
        if self.silent or self._player is None:
            return
        if playing:
            self._write()
            self._player.play()
        else:
            self._player.pause()

    def _seek(self, frame: int) -> None:
        if self.silent or self._player is None or not self._written:
            return
        ms = round(frame * 1000 / self.playback.fps)
        self._player.setPosition(ms)


class ElidedLabel(QLabel):
    """A one-line label that gives way: narrower than its text, it ends in "…" (the whole text
    stays in :meth:`text` and the tooltip) instead of pushing into its neighbours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("no a…"), fm.height())

    def shown_text(self) -> str:
        """The text as drawn at the label's width."""
        return self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width()
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(self.contentsRect(), align, self.shown_text())


def _button(tip: str, text: str = "") -> QToolButton:
    button = QToolButton()
    button.setToolTip(tip)
    button.setText(text)
    return button


def format_time(seconds: float) -> str:
    """ "m:ss.cc"."""
    minutes, rest = divmod(max(seconds, 0.0), 60.0)
    return f"{int(minutes)}:{rest:05.2f}"


class Transport(QWidget):
    """Play/pause, loop, frame step and the time of an :class:`EditState` and its playback."""

    def __init__(
        self, edit: EditState, playback: PlaybackState, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.edit = edit
        self.playback = playback
        style = self.style()
        self.back_button = _button("Previous frame (←)")
        self.back_button.setIcon(themed_icon(style, QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.play_button = _button("Play")
        self.forward_button = _button("Next frame (→)")
        self.forward_button.setIcon(themed_icon(style, QStyle.StandardPixmap.SP_MediaSeekForward))
        self.loop_button = _button("Play in a loop", "Loop")
        self.loop_button.setCheckable(True)
        self.loop_button.setIcon(themed_icon(style, QStyle.StandardPixmap.SP_BrowserReload))
        self.loop_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.time_label = QLabel()
        self.time_label.setStyleSheet("font-family: monospace")
        # the audio line gives way to the time at narrow widths (it ends in "…")
        self.audio_label = ElidedLabel()
        self.audio_label.setStyleSheet("color: #9aa")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        for w in (self.back_button, self.play_button, self.forward_button, self.loop_button):
            layout.addWidget(w)
        layout.addSpacing(10)
        layout.addWidget(self.time_label)
        layout.addSpacing(12)
        layout.addWidget(self.audio_label, 1)

        self.audio = AudioPlayback(playback, self)
        self.back_button.clicked.connect(lambda: playback.step(-1))
        self.forward_button.clicked.connect(lambda: playback.step(1))
        self.play_button.clicked.connect(playback.toggle)
        self.loop_button.toggled.connect(playback.set_loop)
        playback.playingChanged.connect(self._show_playing)
        playback.loopChanged.connect(self.loop_button.setChecked)
        self.audio.statusChanged.connect(self._show_audio)
        edit.frameChanged.connect(self._show_time)
        edit.audioChanged.connect(self._show_time)
        edit.trackChanged.connect(self._show_time)
        self._show_playing(playback.playing)
        self._show_audio(self.audio.status)
        self._show_time()

    def _show_playing(self, playing: bool) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(themed_icon(self.style(), icon))
        silent = f" ({SILENT_TEXT})" if self.audio.status == SILENT_TEXT else ""
        self.play_button.setToolTip(("Pause" if playing else "Play") + silent)

    def _show_audio(self, text: str) -> None:
        self.audio_label.setText(text)
        self.audio_label.setToolTip(text)
        self._show_playing(self.playback.playing)

    def time_text(self) -> str:
        n = self.edit.num_frames
        f = self.edit.frame
        fps = self.playback.fps
        return f"{format_time(f / fps)} / {format_time(n / fps)}   frame {f} / {max(n - 1, 0)}"

    def _show_time(self, *_: object) -> None:
        self.time_label.setText(self.time_text())
