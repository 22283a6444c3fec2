"""The studio's preview in the source video's framing (View → Source video framing): on by
default for a subject made from a video, as exports are framed; off, the square crop; disabled
for a subject without a usable source video. The real engine on the demo subject's model at 64²."""

from __future__ import annotations

from _app_helpers import MULTIMEDIA_NOISE, RENDER_TIMEOUT_MS, make_window, open_and_render
from _video_subject import SOURCE_H, SOURCE_W

pytestmark = MULTIMEDIA_NOISE


def _next_full(qtbot, window, view: str):
    return qtbot.waitSignal(
        window.controller.shown,
        timeout=RENDER_TIMEOUT_MS,
        check_params_cb=lambda r: r.kind == "full" and r.view == view,
    )


def test_the_preview_shows_the_source_framing_and_the_crop_on_demand(
    qtbot, tmp_path, video_subject
) -> None:
    window = open_and_render(qtbot, make_window(qtbot, tmp_path), video_subject)
    act = window.source_view_action
    assert act.isEnabled() and act.isChecked()
    shown = window.controller.last_shown
    assert shown.view == "source" and shown.rgb.shape == (SOURCE_H, SOURCE_W, 3)
    image = window.preview.image()
    assert (image.width(), image.height()) == (SOURCE_W, SOURCE_H)
    assert "source framing (160×120)" in window.status_render.text()

    with _next_full(qtbot, window, "crop") as blocker:
        act.setChecked(False)
    assert blocker.args[0].rgb.shape == (64, 64, 3)
    assert window.preview.image().width() == 64

    with _next_full(qtbot, window, "source") as blocker:
        act.setChecked(True)
    assert blocker.args[0].rgb.shape == (SOURCE_H, SOURCE_W, 3)
    assert window.client.view == "source"


def test_a_subject_without_a_source_video_previews_the_crop(qtbot, tmp_path, demo_subject) -> None:
    window = open_and_render(qtbot, make_window(qtbot, tmp_path), demo_subject)
    assert not window.source_view_action.isEnabled()
    assert "no usable source video" in window.source_view_action.toolTip()
    assert window.client.view == "crop"
    assert window.controller.last_shown.rgb.shape == (64, 64, 3)
