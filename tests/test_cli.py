"""The ``talkstudio`` entry point."""

from __future__ import annotations

import subprocess
import sys

from talkstudio.app import cli

SUBCOMMANDS = ("studio", "preprocess", "train", "render", "eval", "demo")


def test_help_lists_every_subcommand() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "talkstudio.app.cli", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0
    for name in SUBCOMMANDS:
        assert f"    {name}" in res.stdout, name


def test_unbuilt_subcommand_says_so(capsys) -> None:
    import talkstudio.app.commands  # noqa: F401  (registers the built handlers first)

    cli.build_parser()
    saved = dict(cli._HANDLERS)
    try:
        cli._HANDLERS["eval"] = cli._not_built("eval", "the engine issue")
        assert cli.main(["eval", "somewhere"]) == 2
    finally:
        cli._HANDLERS.update(saved)
    assert "not built yet" in capsys.readouterr().err


def test_user_errors_print_a_message_not_a_traceback(tmp_path, capsys) -> None:
    import talkstudio.app.commands  # noqa: F401
    from talkstudio.core.errors import SubjectError

    def fail(args):
        raise SubjectError("the subject folder is damaged")

    saved = dict(cli._HANDLERS)
    try:
        cli.build_parser()
        cli._HANDLERS["eval"] = fail
        assert cli.main(["eval", str(tmp_path)]) == 1
    finally:
        cli._HANDLERS.update(saved)
    err = capsys.readouterr().err
    assert "talkstudio eval: the subject folder is damaged" in err
    assert "Traceback" not in err
