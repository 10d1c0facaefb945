"""Typed errors that the CLI turns into exit codes (DESIGN.md, CLI contract).

Library code raises these; `cli.py` never inspects messages. BadInput -> exit 2 (bad input or
usage, one line on stderr), CheckFailed -> exit 1 (a check or quality gate failed).
"""
import click


class BadInput(click.ClickException):
    """The user's input is unusable: missing path, malformed or unsafe checkpoint, wrong flag."""

    exit_code = 2


class CheckFailed(click.ClickException):
    """A verification or quality gate failed; the message names the check."""

    exit_code = 1
