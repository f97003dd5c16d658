"""``colocam`` command line: sub-commands come from the commands registry.

Each sub-command is registered through ``colocam_register_commands`` (the
built-ins in :mod:`colocam_plugin.cli.commands`), so a plugin adds its own
the same way.

Start-up is kept short (``colocam --help`` well under a second): the parser
lists every command by its registered help line, but only the factory of the
command being run adds its arguments, and commands import torch and the
like inside ``run``.

One error path: a bad flag value is refused when parsed (the validators of
:mod:`colocam_plugin.cli.argtypes`), and every error, a parse error, a
:class:`~colocam_plugin.errors.ColocamError` raised on purpose or an
unexpected exception (a bug), ends the command with ONE line on stderr and a
non-zero exit code, never a traceback; ``--debug`` (before or after the
command) prints the traceback too.

Every command also takes ``--config FILE.toml`` (its options from a file,
flags override it) and leaves its resolved options beside its ``--out``;
``train`` mirrors its CSV logs to TensorBoard (:mod:`colocam_plugin.cli.config`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn, TextIO

from colocam_plugin import __version__
from colocam_plugin.cli import config as cli_config
from colocam_plugin.errors import ColocamError
from colocam_plugin.plugins import PluginWarning

__all__ = ["build_parser", "main", "parse_args"]

#: exit codes: a user's mistake (bad flag, bad file), and an unexpected error (a bug)
EXIT_USAGE = 2
EXIT_BUG = 1


def _one_line(text: str) -> str:
    """``text`` on one line: its lines joined by spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with 2."""
        self.exit(
            EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n"
        )


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append ``(default: X)`` to every option's help that has a default to show.

    Works for any command, a plugin's included: options without help text get
    one, help that already names its default is left alone.
    """
    for action in parser._actions:
        default = action.default
        if (
            action.required
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or isinstance(action, (argparse._HelpAction, argparse._VersionAction))
            or not action.option_strings
        ):
            continue
        text = action.help or ""
        if text is argparse.SUPPRESS or "default" in text.lower():
            continue
        action.help = f"{text} (default: %(default)s)" if text else "default: %(default)s"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Parser with one sub-parser per registered command.

    Args:
        command: the command about to run: only its factory is called (adding
            its arguments and its ``run``); the other sub-parsers carry just
            their help line. ``None``: no factory is called (``colocam --help``).
    """
    from colocam_plugin.api import get_registries

    parser = _Parser(
        prog="colocam",
        description="CoLo-CAM and CAM baselines for weakly supervised video object localization.",
    )
    parser.add_argument("--version", action="version", version=f"colocam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="on an error, print the traceback too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = get_registries().commands
    for name in commands.names():
        entry = commands.entry(name)
        sp = sub.add_parser(name, help=entry.help, description=entry.help)
        if name == command:
            sp.set_defaults(_run=entry.factory(sp))
            cli_config.add_run_options(sp, name)
            _show_defaults(sp)
            if "--debug" not in sp._option_string_actions:  # also after the command
                sp.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="on an error, print the traceback too",
                )
    return parser


def _command_index(argv: Sequence[str]) -> int | None:
    """Where the sub-command is in ``argv``: its first positional argument.

    The top-level options (``-h``, ``--version``, ``-v``, ``--debug``) take no value, so
    the first argument not starting with ``-`` (or the one after ``--``) is
    the command, as argparse reads it.
    """
    for i, arg in enumerate(argv):
        if arg == "--":
            return i + 1 if i + 1 < len(argv) else None
        if not arg.startswith("-"):
            return i
    return None


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (see :func:`_command_index`)."""
    i = _command_index(argv)
    return None if i is None else argv[i]


def _sub_parser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser | None:
    """The sub-parser of ``command``, or ``None`` (no command, or not a registered one)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command is not None:
            sub: argparse.ArgumentParser | None = action.choices.get(command)
            return sub
    return None


def parse_args(argv: Sequence[str]) -> tuple[argparse.ArgumentParser | None, argparse.Namespace]:
    """Parse ``argv`` as ``colocam`` does: ``--config`` file first, flags over it.

    Returns:
        The command's sub-parser (``None`` without a command) and the namespace.

    Raises:
        SystemExit: a parse error (one line, exit 2), ``--help``, ``--version``.
    """
    argv = list(argv)
    with _plugin_warnings_on_one_line():
        parser = build_parser(_command_in(argv))
    index = _command_index(argv)
    command = None if index is None else argv[index]
    sub = _sub_parser(parser, command)
    applied = None
    if sub is not None and index is not None and command is not None:
        path = cli_config.config_path_in(sub, argv[index + 1 :])
        if path is not None:
            applied = cli_config.apply_config(
                sub, path, command=command, commands=_commands(parser)
            )
    args = parser.parse_args(argv)
    if sub is not None and applied is not None:
        cli_config.settle_groups(sub, args, applied)
    return sub, args


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    """Every command's name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


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


def _debug_in(argv: Sequence[str]) -> bool:
    """Whether ``--debug`` is among the options (before a ``--``)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--debug":
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``colocam`` script; returns the exit code.

    Every error prints one line on stderr, no traceback (``--debug`` adds
    it): a bad flag value ``colocam CMD: error: argument --FLAG: ...``
    (exit 2), an error raised on purpose
    (:class:`~colocam_plugin.errors.ColocamError`) ``colocam: error: ...``
    (exit 2), an unexpected exception ``colocam: error: unexpected
    TypeError: ... (a bug? rerun with --debug ...)`` (exit 1).
    ``--help`` and ``--version`` exit with 0 through ``SystemExit`` as
    argparse does.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_in(argv)
    try:
        return _run(argv)
    except SystemExit as exc:  # argparse: --help, --version, a parse error
        if exc.code in (0, None):
            raise
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except ColocamError as exc:
        if debug:
            traceback.print_exc()
        print(f"colocam: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("colocam: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        what = _one_line(str(exc))
        what = f"{type(exc).__name__}: {what}" if what else type(exc).__name__
        hint = "" if debug else "; rerun with --debug for the traceback"
        print(
            f"colocam: error: unexpected {what} (a bug? please report it{hint})",
            file=sys.stderr,
        )
        return EXIT_BUG


def _run(argv: list[str]) -> int:
    """Parse ``argv``, run the command, save its resolved config (errors propagate).

    The resolved config goes beside ``--out`` when the command succeeds, or
    when it fails after (re)writing ``--out`` (a checkpoint to resume).
    """
    sub, args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if sub is None or not getattr(args, "_run", None):
        build_parser().print_help()
        return EXIT_USAGE
    command = args.command
    start = time.time()
    try:
        with cli_config.tensorboard_mirror(command, args):
            code = int(args._run(args) or 0)
    except BaseException:
        cli_config.save_resolved(sub, args, command, since=start)
        raise
    if code == 0:
        cli_config.save_resolved(sub, args, command)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
