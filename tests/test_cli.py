"""The ``talkstudio`` entry point."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from talkstudio.app import cli

SUBCOMMANDS = ("studio", "preprocess", "train", "render", "eval", "demo")


def test_help_lists_every_subcommand() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "talkstudio.app.cli", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0
    for name in SUBCOMMANDS:
        assert f"    {name}" in res.stdout, name


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_and_train_part_has_a_handler() -> None:
    import talkstudio.app.commands  # noqa: F401  (registers the handlers)

    subs = _subparsers(cli.build_parser())
    assert set(SUBCOMMANDS) <= set(subs)
    assert set(subs) == set(cli._HANDLERS), "a subcommand without a handler, or the reverse"
    part = next(a for a in subs["train"]._actions if a.dest == "part")
    assert set(part.choices) == set(cli._TRAIN_PARTS)


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


def test_threads_option_sets_torch_threads_before_the_command(tmp_path, capsys) -> None:
    import torch

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    try:
        # the subject is missing, so the command fails at once, after the option took effect
        assert cli.main(["eval", str(tmp_path / "missing"), "--threads", str(wanted)]) == 1
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
    assert "talkstudio eval:" in capsys.readouterr().err


def test_threads_is_a_global_option_too() -> None:
    """`talkstudio --threads 1` (the studio) and `talkstudio --threads 1 train ...` parse; a
    subcommand's own --threads wins, and no --threads leaves torch's choice."""
    parser = cli.build_parser()
    args = parser.parse_args(["--threads", "1"])
    assert args.command is None and args.threads == 1
    args = parser.parse_args(["--threads", "3", "train", "head", "subj"])
    assert (args.command, args.part, args.threads) == ("train", "head", 3)
    assert parser.parse_args(["--threads", "3", "eval", "s", "--threads", "2"]).threads == 2
    assert parser.parse_args(["eval", "s"]).threads is None


def test_global_threads_option_takes_effect(tmp_path, capsys) -> None:
    import torch

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    try:
        assert cli.main(["--threads", str(wanted), "eval", str(tmp_path / "missing")]) == 1
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
    assert "talkstudio eval:" in capsys.readouterr().err


def test_threads_option_refuses_zero_with_a_message(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["render", "--subject", "s", "--audio", "a", "--out", "o.mp4", "--threads", "0"])
    assert exc.value.code == 2
    assert "not a whole number of threads" in capsys.readouterr().err
