"""``colocam`` command line: sub-commands come from the commands registry.

Each sub-command is registered through ``colocam_register_commands`` (the
built-ins in :mod:`colocam_plugin.builtin.commands`), so a plugin adds its own
the same way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from colocam_plugin import __version__
from colocam_plugin.errors import ColocamError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Parser with one sub-parser per registered command."""
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
        sp.set_defaults(_run=entry.factory(sp))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``colocam`` script; returns the exit code.

    Errors raised on purpose (:class:`~colocam_plugin.errors.ColocamError`)
    print one line ``colocam: error: ...`` and exit with 2.
    """
    parser = build_parser()
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
