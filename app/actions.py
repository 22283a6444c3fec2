"""The main window's actions, menus, toolbar and keyboard shortcuts.

Shortcuts: Space play/pause, ← / → one frame, Ctrl+Z undo, Ctrl+Shift+Z (and Ctrl+Y) redo,
Ctrl+S save, Ctrl+Shift+S save as, Ctrl+O open a project, Ctrl+E export, Ctrl+N new subject.
Space and the arrows are window-wide: they work whatever has the focus, except in text fields
and spin boxes, which keep their own editing keys. Help → Keyboard shortcuts (F1) lists them all,
read from the actions themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStyle,
    QToolBar,
    QToolButton,
    QWidget,
)

from talkstudio.widgets.icons import themed_icon
from talkstudio.widgets.state import PlaybackState

PREVIEW_SIZES = (128, 256, 512)


class StudioSlots(Protocol):
    """What the actions call: the main window's commands."""

    def open_demo(self) -> object: ...
    def new_subject(self) -> object: ...
    def choose_subject_to_train(self) -> object: ...
    def choose_subject(self) -> object: ...
    def choose_project(self) -> object: ...
    def choose_audio(self) -> object: ...
    def set_driving_audio(self, audio: str | Path | None) -> object: ...
    def save_project(self) -> object: ...
    def save_project_as(self) -> object: ...
    def show_export(self) -> object: ...
    def close_session(self) -> object: ...
    def close(self) -> object: ...
    def reset_all_edits(self) -> object: ...
    def reset_layout(self) -> object: ...
    def show_about(self) -> object: ...
    def show_playing(self, playing: bool) -> object: ...
    def set_preview_size(self, size: int) -> object: ...


@dataclass
class Actions:
    """Every action of the main window, by name."""

    open_demo: QAction
    new_subject: QAction
    train_subject: QAction
    open_subject: QAction
    open_project: QAction
    load_audio: QAction
    replay_audio: QAction
    save: QAction
    save_as: QAction
    export: QAction
    close_session: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    reset_edits: QAction
    insert_blink: QAction
    play: QAction
    prev_frame: QAction
    next_frame: QAction
    loop: QAction
    reset_layout: QAction
    about: QAction
    shortcuts: QAction
    recent_menu: QMenu
    size_actions: dict[int, QAction]

    def editing(self) -> tuple[QAction, ...]:
        """The actions that need an open session (disabled on the welcome page)."""
        return (
            self.save,
            self.save_as,
            self.export,
            self.load_audio,
            self.replay_audio,
            self.close_session,
            self.reset_edits,
            self.insert_blink,
            self.play,
            self.prev_frame,
            self.next_frame,
            self.loop,
        )


def _action(
    window: QMainWindow,
    text: str,
    slot: Callable[..., object],
    shortcut: QKeySequence
    | QKeySequence.StandardKey
    | Qt.Key
    | str
    | list[QKeySequence]
    | None = None,
    icon: QStyle.StandardPixmap | None = None,
    tip: str = "",
) -> QAction:
    action = QAction(text, window)
    if icon is not None:
        action.setIcon(themed_icon(window.style(), icon))
    if isinstance(shortcut, list):
        action.setShortcuts(shortcut)
    elif shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(slot)
    window.addAction(action)  # shortcuts work even when the action sits in a hidden menu
    return action


def build_actions(
    w: QMainWindow,
    slots: StudioSlots,
    stack: QUndoStack,
    playback: PlaybackState,
    docks: dict[str, QDockWidget],
    preview_size: int,
) -> tuple[Actions, QToolBar]:
    """Create the actions of ``w`` and put them in its menus and a toolbar (returned with them).

    ``slots`` are the commands the actions call, ``stack`` the undo stack behind Undo/Redo,
    ``docks`` the docks that View shows and hides, ``preview_size`` the size checked at first.
    """
    sp = QStyle.StandardPixmap
    key = QKeySequence.StandardKey
    undo = stack.createUndoAction(w, "&Undo")
    undo.setShortcut(QKeySequence(key.Undo))
    undo.setIcon(themed_icon(w.style(), sp.SP_ArrowBack))
    redo = stack.createRedoAction(w, "&Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    redo.setIcon(themed_icon(w.style(), sp.SP_ArrowForward))
    for act, name in ((undo, "undo"), (redo, "redo")):
        act.setObjectName(name)  # their text names the command: shortcut_rows finds them by name
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        w.addAction(act)

    a = Actions(
        open_demo=_action(w, "Open the &demo subject", slots.open_demo, None, sp.SP_MediaPlay),
        new_subject=_action(
            w,
            "&New subject from a video…",
            slots.new_subject,
            "Ctrl+N",
            sp.SP_FileDialogNewFolder,
            "Create and train a subject from a video (the training wizard)",
        ),
        train_subject=_action(
            w,
            "&Train or resume a subject…",
            slots.choose_subject_to_train,
            None,
            sp.SP_BrowserReload,
            "Train a preprocessed subject, or resume a training that was cancelled",
        ),
        open_subject=_action(
            w,
            "Open &subject…",
            slots.choose_subject,
            "Ctrl+Shift+O",
            sp.SP_DirOpenIcon,
            "Open a trained subject folder",
        ),
        open_project=_action(
            w,
            "&Open project…",
            slots.choose_project,
            QKeySequence(key.Open),
            sp.SP_DialogOpenButton,
            "Open a .talkproj project",
        ),
        load_audio=_action(
            w,
            "&Load driving speech…",
            slots.choose_audio,
            "Ctrl+L",
            sp.SP_MediaVolume,
            "Drive the subject with another speech recording (needs a trained stage 1)",
        ),
        replay_audio=_action(
            w, "Use the subject's &own speech", lambda: slots.set_driving_audio(None), None
        ),
        save=_action(
            w,
            "&Save project",
            slots.save_project,
            QKeySequence(key.Save),
            sp.SP_DialogSaveButton,
            "Save the project (subject, speech and edits)",
        ),
        save_as=_action(w, "Save project &as…", slots.save_project_as, "Ctrl+Shift+S"),
        export=_action(
            w,
            "&Export video…",
            slots.show_export,
            "Ctrl+E",
            sp.SP_DriveFDIcon,
            "Export the edited clip as an MP4 with sound",
        ),
        close_session=_action(w, "&Close", slots.close_session, QKeySequence(key.Close)),
        quit=_action(w, "&Quit", slots.close, QKeySequence(key.Quit)),
        undo=undo,
        redo=redo,
        reset_edits=_action(w, "Reset &all edits", slots.reset_all_edits, None),
        insert_blink=_action(
            w,
            "Insert &blink at the playhead",
            lambda: playback.edit.insert_blink(),
            "B",
            None,
            "Close both eyes for ~0.24 s, fully shut at the current frame (undoable)",
        ),
        play=_action(
            w,
            "&Play / pause",
            playback.toggle,
            Qt.Key.Key_Space,
            sp.SP_MediaPlay,
            "Play or pause (Space)",
        ),
        prev_frame=_action(w, "Pre&vious frame", lambda: playback.step(-1), Qt.Key.Key_Left),
        next_frame=_action(w, "Ne&xt frame", lambda: playback.step(1), Qt.Key.Key_Right),
        loop=_action(w, "&Loop", playback.set_loop, None),
        reset_layout=_action(w, "&Reset layout", slots.reset_layout, None),
        about=_action(w, "&About Talkstudio", slots.show_about, None),
        shortcuts=_action(
            w, "&Keyboard shortcuts", lambda: show_shortcuts(w), QKeySequence(key.HelpContents)
        ),
        recent_menu=QMenu("Open &recent", w),
        size_actions={},
    )
    a.loop.setCheckable(True)
    playback.loopChanged.connect(a.loop.setChecked)
    playback.playingChanged.connect(slots.show_playing)

    bar = w.menuBar()
    file = bar.addMenu("&File")
    for item in (a.open_demo, a.new_subject, a.train_subject, None, a.open_subject, a.open_project):
        file.addAction(item) if item else file.addSeparator()
    file.addMenu(a.recent_menu)
    for item in (None, a.load_audio, a.replay_audio, None, a.save, a.save_as, a.export, None):
        file.addAction(item) if item else file.addSeparator()
    file.addAction(a.close_session)
    file.addAction(a.quit)

    edit = bar.addMenu("&Edit")
    for item in (a.undo, a.redo, None, a.insert_blink, None, a.reset_edits):
        edit.addAction(item) if item else edit.addSeparator()

    play = bar.addMenu("&Playback")
    for item in (a.play, a.prev_frame, a.next_frame, a.loop):
        play.addAction(item)

    view = bar.addMenu("&View")
    for dock in docks.values():
        view.addAction(dock.toggleViewAction())
    view.addSeparator()
    sizes = view.addMenu("Preview &size")
    for s in PREVIEW_SIZES:
        act = QAction(f"{s} × {s}", w)
        act.setCheckable(True)
        act.setChecked(s == preview_size)
        act.triggered.connect(lambda _=False, s=s: slots.set_preview_size(s))
        sizes.addAction(act)
        a.size_actions[s] = act
    view.addSeparator()
    view.addAction(a.reset_layout)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a.shortcuts)
    help_menu.addAction(a.about)

    tools = QToolBar("Main toolbar", w)
    tools.setObjectName("mainToolbar")
    tools.setMovable(False)
    tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for item in (a.open_project, a.save, None, a.undo, a.redo, None, a.play, a.export):
        tools.addAction(item) if item else tools.addSeparator()
    for act in (a.undo, a.redo):  # their text names the command: too long for a toolbar
        button = tools.widgetForAction(act)
        if isinstance(button, QToolButton):
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools)
    return a, tools


def shortcut_rows(w: QWidget) -> list[tuple[str, str]]:
    """(what, keys) for every action of ``w`` that has a shortcut, in menu order."""
    rows = []
    for action in w.actions():
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        if keys:
            what = action.text().replace("&", "").rstrip("…")
            if action.objectName() == "undo":
                what = "Undo"
            elif action.objectName() == "redo":
                what = "Redo"
            rows.append((what, " or ".join(keys)))
    return rows + list(WIDGET_KEYS)


WIDGET_KEYS = (("Delete the selected keyframe (timeline)", "Delete or Backspace"),)
"""Keys a view handles itself (no menu action), listed after the actions' shortcuts."""


def show_shortcuts(w: QWidget) -> QMessageBox:
    """A (non-modal) box listing the keyboard shortcuts."""
    lines = "".join(
        f"<tr><td style='padding-right:18px'>{what}</td><td><b>{keys}</b></td></tr>"
        for what, keys in shortcut_rows(w)
    )
    box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", "", parent=w)
    box.setObjectName("shortcutsBox")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(
        f"<table>{lines}</table><p>Space and the arrows work wherever the focus is, "
        "except in text and number fields.</p>"
        "<p><b>Edits</b>: α1–α3 open or close the eyes and the mouth; under <i>More</i>, "
        "<i>brows</i> raises (+) or lowers (−) the brows, <i>head motion</i> scales the head's "
        "movement (0: a still head, 2: twice as much), <i>Insert blink</i> (B) shuts the eyes "
        "at the playhead and the blink rate sets the synthesised blinks per minute (auto: only "
        "when the subject's footage blinks too rarely). Each is keyframed on its timeline lane "
        "and undoable; docs/edit.md explains the rules.</p>"
    )
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
