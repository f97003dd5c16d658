"""``colocam`` command line: sub-commands come from the commands registry.

Each sub-command is registered through ``colocam_register_commands`` (the
built-ins in :mod:`colocam_plugin.builtin.commands`), so a plugin adds its own
the same way.

Start-up is kept short (``colocam --help`` well under a second): the parser
lists every command by its registered help line, but only the factory of the
command being run adds its arguments, and commands import torch and the
like inside ``run``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from colocam_plugin import __version__
from colocam_plugin.errors import ColocamError
from colocam_plugin.plugins import PluginWarning

__all__ = ["build_parser", "main"]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Parser with one sub-parser per registered command.

    Args:
        command: the command about to run: only its factory is called (adding
            its arguments and its ``run``); the other sub-parsers carry just
            their help line. ``None``: no factory is called (``colocam --help``).
    """
    from colocam_plugin.api import get_registries

    parser = argparse.ArgumentParser(
        prog="colocam",
        description="CoLo-CAM and CAM baselines for weakly supervised video object localization.",
    )
    parser.add_argument("--version", action="version", version=f"colocam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = get_registries().commands
    for name in commands.names():
        entry = commands.entry(name)
        sp = sub.add_parser(name, help=entry.help, description=entry.help)
        if name == command:
            sp.set_defaults(_run=entry.factory(sp))
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: its first positional argument.

    The top-level options (``-h``, ``--version``, ``-v``) take no value, so
    the first argument not starting with ``-`` (or the one after ``--``) is
    the command, as argparse reads it.
    """
    for i, arg in enumerate(argv):
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not arg.startswith("-"):
            return arg
    return None


@contextmanager
def _plugin_warnings_on_one_line() -> Iterator[None]:
    """Show :class:`PluginWarning` as ``colocam: warning: ...`` on stderr."""
    show = warnings.showwarning

    def one_line(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, PluginWarning):
            print(f"colocam: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = one_line
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``colocam`` script; returns the exit code.

    Errors raised on purpose (:class:`~colocam_plugin.errors.ColocamError`)
    print one line ``colocam: error: ...`` and exit with 2.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    with _plugin_warnings_on_one_line():
        parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ColocamError as exc:
        print(f"colocam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("colocam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
