"""The export dialog: where, how large, which frames; then progress with an ETA, and cancel.

The export runs as a job on the engine thread (:meth:`EngineClient.export`): the engine's
export generator renders every frame with the keyframed edits and muxes the driving audio; the
dialog only shows its progress. Cancel closes the generator between two frames; the engine's
writer removes the partial file, so a cancelled export leaves nothing behind. The edits are
copied when the export starts: editing meanwhile does not change the video being written.

"Workers" renders the frames in that many processes on this machine, each with its share of the
torch threads (see core/parallel_export.py); the video is the same frame for frame.

"Framing": the source video's own frames with the render pasted back (the default for subjects
made from a video), or the square crop; the choice is disabled, with a tooltip saying why, when
the subject has no usable source video (see core/framing.py). "Frame height" scales a
source-framed video (the source's own size, or a smaller standard height, the aspect kept).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from talkstudio.core.edit import Edits
from talkstudio.core.framing import Framing, scaled_size
from talkstudio.core.progress import Progress
from talkstudio.core.project import ExportSettings
from talkstudio.core.timing import FPS
from talkstudio.widgets.state import EditState

from .images import FitImage, format_eta
from .jobs import JobRunner, OwnsJob, describe_error
from .worker import EngineClient

OUTPUT_HEIGHTS = (2160, 1440, 1080, 720, 540, 480, 360)
"""Standard frame heights offered below the source's own (source framing)."""


class ExportDialog(OwnsJob, QDialog):
    """Export the open session's clip with its edits to an MP4."""

    exported = Signal(object)  # Path
    """The MP4 was written."""

    def __init__(self, client: EngineClient, state: EditState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export video")
        self.setObjectName("exportDialog")
        self.client = client
        self.state = state
        self.job: JobRunner | None = None
        self.settings = ExportSettings()
        self._t0 = 0.0

        self.path_edit = QLineEdit()
        self.path_edit.setMinimumWidth(360)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(32, 2048)
        self.size_spin.setSingleStep(64)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip(
            "Side of the rendered square (even, for H.264): the video's side with the square "
            "crop; pasted back into the source video's frames with the source framing"
        )
        self.start_spin = QSpinBox()
        self.end_spin = QSpinBox()
        self.whole_button = QPushButton("Whole clip")
        self.whole_button.clicked.connect(self._whole_clip)
        range_row = QHBoxLayout()
        range_row.addWidget(QLabel("from frame"))
        range_row.addWidget(self.start_spin)
        range_row.addWidget(QLabel("to frame"))
        range_row.addWidget(self.end_spin)
        range_row.addWidget(self.whole_button)
        range_row.addStretch(1)
        self.range_label = QLabel()
        self.range_label.setObjectName("hint")
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.workers_spin.setValue(1)
        self.workers_spin.setToolTip(
            "Render in this many processes on this machine, each with its share of the CPU "
            "threads; the video is the same. More than one pays on many cores with a long clip "
            "(each process first loads the models, a few seconds)"
        )

        self.framing_combo = QComboBox()
        self.framing_combo.addItem("Source video", "source")
        self.framing_combo.addItem("Square crop", "crop")
        self.framing_combo.currentIndexChanged.connect(self._range_changed)
        self.source_framing: Framing | None = None
        """How the open subject exports in the source framing (None: unknown)."""
        self.framing_note = QLabel()
        self.framing_note.setObjectName("hint")
        self.framing_note.setWordWrap(True)
        self.framing_note.hide()

        form = QFormLayout()
        self._form = form
        form.addRow("File", path_row)
        form.addRow("Framing", self.framing_combo)
        form.addRow("", self.framing_note)
        self.height_combo = QComboBox()
        self.height_combo.setToolTip(
            "Rows of the exported video in the source framing; the width follows the source's "
            "aspect (both even, for H.264)"
        )
        self.height_combo.currentIndexChanged.connect(self._range_changed)
        form.addRow("Frame height", self.height_combo)
        form.addRow("Size", self.size_spin)
        form.addRow("Frames", range_row)
        form.addRow("", self.range_label)
        form.addRow("Workers", self.workers_spin)

        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m frames")
        self.eta_label = QLabel(" ")
        self.thumb = FitImage()
        self.thumb.setFixedSize(96, 96)
        self.thumb.setObjectName("exportThumb")
        prog = QHBoxLayout()
        col = QVBoxLayout()
        col.addWidget(self.progress)
        col.addWidget(self.eta_label)
        col.addStretch(1)
        prog.addLayout(col, 1)
        prog.addWidget(self.thumb)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.folder_button = self.buttons.addButton(
            "Show in folder", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.folder_button.setToolTip("Open the folder of the exported video")
        self.folder_button.clicked.connect(self.show_in_folder)
        self.written: Path | None = None
        """The last video this dialog wrote."""
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addSpacing(6)
        layout.addLayout(prog)
        layout.addWidget(self.buttons)
        for spin in (self.start_spin, self.end_spin):
            spin.valueChanged.connect(self._range_changed)
        self._set_running(False)

    # --- setting up ----------------------------------------------------------------------------
    def prepare(
        self, settings: ExportSettings, default_path: Path, framing: Framing | None = None
    ) -> None:
        """Fill the fields from ``settings`` (the project's) for the current clip; ``framing``:
        how the open subject exports in the source framing (None: unknown, the crop only)."""
        self.settings = settings
        self._prepare_framing(settings, framing)
        last = max(self.state.num_frames - 1, 0)
        self.path_edit.setText(settings.path or str(default_path))
        self.size_spin.setValue(settings.size)
        for spin in (self.start_spin, self.end_spin):
            spin.setRange(0, last)
        self.start_spin.setValue(min(settings.start_frame, last))
        end = last if settings.end_frame is None else min(settings.end_frame - 1, last)
        self.end_spin.setValue(end)
        if self.job is None:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.eta_label.setText(" ")
            self.thumb.clear()
        self._range_changed()

    def _prepare_framing(self, settings: ExportSettings, framing: Framing | None) -> None:
        self.source_framing = framing
        usable = self._source_usable()
        self.framing_combo.setEnabled(usable and self.job is None)
        if framing is not None and usable:
            self.framing_combo.setToolTip(
                f"Source video: {framing.width}x{framing.height} frames of {framing.video} with "
                "the render pasted back. Square crop: the rendered square as it is"
            )
            want = settings.framing or "source"
        else:
            why = framing.notice if framing is not None else None
            self.framing_combo.setToolTip(
                "Only the square crop: " + (why or "the subject has no source video")
            )
            want = "crop"
        self.framing_combo.setCurrentIndex(max(0, self.framing_combo.findData(want)))
        self._fill_heights(settings)
        note = framing.notice if framing is not None else None  # a video subject's fallback
        self.framing_note.setText(f"Note: {note}" if note else "")
        self.framing_note.setVisible(bool(note))

    def _fill_heights(self, settings: ExportSettings) -> None:
        """The source's own height, then the standard ones below it."""
        combo = self.height_combo
        combo.blockSignals(True)
        combo.clear()
        framing = self.source_framing
        if framing is not None and self._source_usable():
            w, h = framing.width, framing.height
            combo.addItem(f"{h} (the source's, {w}x{h})", 0)
            for rows in (h for h in OUTPUT_HEIGHTS if h < framing.height):
                sw, sh = scaled_size(w, h, rows)
                combo.addItem(f"{sh} ({sw}x{sh})", sh)
            combo.setCurrentIndex(max(0, combo.findData(settings.height or 0)))
        combo.blockSignals(False)
        self._show_height()

    def _show_height(self) -> None:
        shown = self.framing == "source" and self.height_combo.count() > 0
        self.height_combo.setVisible(shown)
        label = self._form.labelForField(self.height_combo)
        if label is not None:
            label.setVisible(shown)

    @property
    def out_height(self) -> int | None:
        """Rows of a source-framed export (None: the source's own)."""
        if self.framing != "source" or self.height_combo.count() == 0:
            return None
        return int(self.height_combo.currentData() or 0) or None

    def _source_usable(self) -> bool:
        return self.source_framing is not None and self.source_framing.kind == "source"

    @property
    def framing(self) -> str:
        """The framing the export will use: "source" or "crop"."""
        return str(self.framing_combo.currentData())

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to", self.path_edit.text(), "MP4 video (*.mp4)"
        )
        if path:
            self.path_edit.setText(path if path.endswith(".mp4") else path + ".mp4")

    def _whole_clip(self) -> None:
        self.start_spin.setValue(0)
        self.end_spin.setValue(self.end_spin.maximum())

    def _range_changed(self) -> None:
        start, end = self.start_spin.value(), self.end_spin.value()
        n = end - start + 1
        if n <= 0:
            self.range_label.setText("the last frame is before the first")
        else:
            shape = ""
            if self.framing == "source" and self.source_framing is not None:
                f = self.source_framing
                w, h = scaled_size(f.width, f.height, self.out_height)
                shape = f", {w}x{h} (the source video's frame)"
            self.range_label.setText(f"{n} frames, {n / FPS:.2f} s at {FPS} fps{shape}, with sound")
        self._show_height()
        self.export_button.setEnabled(n > 0 and self.job is None)

    # --- running -------------------------------------------------------------------------------
    def start_export(self) -> JobRunner | None:
        """Start the export with the fields' values; returns the job (None when invalid)."""
        if self.job is not None:
            return self.job
        path = self.path_edit.text().strip()
        size = self.size_spin.value()
        start, end = self.start_spin.value(), self.end_spin.value() + 1
        if not path:
            self.eta_label.setText("choose a file to export to")
            return None
        if size % 2:
            size += 1
            self.size_spin.setValue(size)
        if end <= start:
            self.eta_label.setText("the last frame is before the first")
            return None
        out = Path(path).expanduser()
        if out.suffix.lower() != ".mp4":
            out = out.with_name(out.name + ".mp4")
        self.settings.path = str(out)
        self.settings.size = size
        self.settings.start_frame = start
        self.settings.end_frame = None if end >= self.state.num_frames else end
        self.settings.framing = self.framing if self._source_usable() else ""
        self.settings.height = self.out_height
        edits = Edits.from_json(self.state.edits.to_json())  # a snapshot
        job = self.client.export(
            out,
            edits,
            size,
            start,
            end,
            workers=self.workers_spin.value(),
            framing=self.framing,
            height=self.out_height,
        )
        self.job = job
        self._t0 = time.monotonic()
        self.progress.setRange(0, end - start)
        self.progress.setValue(0)
        self.eta_label.setText("starting…")
        job.progress.connect(self._progress)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        job.cancelled.connect(self._cancelled)
        job.done.connect(self._done)
        self._set_running(True)
        job.start()
        return job

    def _progress(self, p: Progress) -> None:
        self.progress.setRange(0, p.total)
        self.progress.setValue(p.step)
        elapsed = time.monotonic() - self._t0
        eta = elapsed / p.step * (p.total - p.step) if p.step else None
        per = elapsed / p.step * 1000 if p.step else 0
        self.eta_label.setText(f"{format_eta(eta)} · {per:.0f} ms/frame")
        if p.preview is not None:
            self.thumb.set_rgb(p.preview)

    def _finished(self, path: object) -> None:
        elapsed = time.monotonic() - self._t0
        self.eta_label.setText(f"wrote {path} in {elapsed:.1f} s")
        self.written = Path(str(path))
        self.exported.emit(self.written)

    def show_in_folder(self) -> bool:
        """Open the folder of the last exported video in the desktop's file manager."""
        if self.written is None or not self.written.parent.is_dir():
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.written.parent)))

    def _failed(self, error: BaseException) -> None:
        self.eta_label.setText(f"export failed: {describe_error(error).splitlines()[0]}")

    def _cancelled(self) -> None:
        self.progress.setValue(0)
        self.eta_label.setText("cancelled; no file was written")

    def _done(self) -> None:
        self.job = None
        self._set_running(False)
        self._range_changed()

    def cancel_export(self) -> None:
        """Cancel a running export (the partial file is removed), or close the dialog."""
        if self.job is not None:
            self.cancel_job()
        else:
            self.reject()

    def _set_running(self, running: bool) -> None:
        fields = (self.path_edit, self.browse_button, self.size_spin, self.start_spin)
        for w in (*fields, self.end_spin, self.whole_button, self.workers_spin, self.height_combo):
            w.setEnabled(not running)
        self.framing_combo.setEnabled(not running and self._source_usable())
        self.export_button.setEnabled(not running)
        self.folder_button.setEnabled(not running and self.written is not None)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)

    def reject(self) -> None:
        if self.job is not None:  # Esc or the window's close button while exporting
            self.job.cancel()
            return
        super().reject()
