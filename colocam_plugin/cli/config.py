"""Configuration files for every command, the resolved config of a run, and ``--tensorboard``.

``colocam COMMAND --config FILE.toml`` reads the command's options from a TOML
file. Keys are the long option names, with dashes or underscores
(``batch-frames = 32`` or ``batch_frames = 32``; a positional argument by its
name, e.g. ``inputs = ["a.mp4"]`` for ``localize``), at the top level or under
a table named after the command (``[train]``); a file may hold several
commands' tables, and the running command's table wins over the top level.
Each value goes through the same ``type=`` validator and ``choices`` as the
flag, so a bad value is refused with one line naming the file and the key; an
unknown key is refused naming the key, the file and the valid keys. Flags
given on the command line override the file: the file's values become the
parser's defaults (:func:`apply_config`), and an option the file supplies is
no longer demanded on the command line.

After a run, the options' final values are written beside the command's
``--out`` (:func:`save_resolved`): ``OUT.config.toml`` beside a file (a
checkpoint), ``OUT/config.toml`` inside a folder. ``colocam COMMAND --config``
on that file repeats the run.

Commands that log per-step CSV files beside ``--out`` (:data:`CSV_LOGS`) get
``--tensorboard DIR``: the rows are mirrored into TensorBoard event files
while the command runs (:func:`tensorboard_mirror`,
:class:`colocam_plugin.train.tb.CsvMirror`).

Only :mod:`argparse` and the standard library are imported here
(``colocam --help`` stays fast); ``tomllib`` is read only when ``--config``
is given.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colocam_plugin.cli.argtypes import existing_file, output_dir, output_file

__all__ = [
    "CSV_LOGS",
    "AppliedConfig",
    "add_run_options",
    "apply_config",
    "config_destination",
    "config_path_in",
    "dumps_toml",
    "resolved_options",
    "save_resolved",
    "settle_groups",
    "tensorboard_mirror",
]

#: destinations the CLI manages itself: never read from, nor written to, a config file
_NOT_SETTABLE = frozenset({"config", "debug", "help", "version", "_run"})

#: commands whose run appends per-step CSV logs beside ``--out``:
#: TensorBoard tag prefix -> file-name suffix (``OUT.log.csv``, ``OUT.val.csv``)
CSV_LOGS: dict[str, dict[str, str]] = {"train": {"train": ".log.csv", "val": ".val.csv"}}

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


# ---------------------------------------------------------------- the options


def add_run_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``--config`` (every command) and ``--tensorboard`` (:data:`CSV_LOGS`) to ``parser``.

    A command that defines its own ``--config`` or ``--tensorboard`` keeps it
    (and then gets no configuration-file handling from here).
    """
    if "--config" not in parser._option_string_actions:
        action = parser.add_argument(
            "--config",
            metavar="FILE.toml",
            type=existing_file,
            help="read options from a TOML file (keys: long option names, at the top level "
            "or under a [COMMAND] table); flags on the command line override it",
        )
        action.colocam_config = True  # type: ignore[attr-defined]
    if command in CSV_LOGS and "--tensorboard" not in parser._option_string_actions:
        parser.add_argument(
            "--tensorboard",
            metavar="DIR",
            type=_tensorboard_dir,
            default="auto",
            help="also write the per-step CSV logs (loss terms, gradient norms, lr, val "
            "scores) as TensorBoard events in DIR, while training; auto: OUT.tb/ when the "
            "tensorboard package is installed; none: off (default: auto)",
        )


def _tensorboard_dir(text: str) -> str:
    """``auto``, ``none`` or a folder path (``--tensorboard``)."""
    return text if text in ("auto", "none") else output_dir(text)


def _owns_config(parser: argparse.ArgumentParser) -> bool:
    """Whether ``parser``'s ``--config`` is the one :func:`add_run_options` added."""
    action = parser._option_string_actions.get("--config")
    return bool(getattr(action, "colocam_config", False))


def _settable(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions a config file may set (not ``--help``, ``--config``, ``--debug``)."""
    return [
        a
        for a in parser._actions
        if a.dest not in _NOT_SETTABLE
        and a.dest != argparse.SUPPRESS
        and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
        and not isinstance(a, argparse._SubParsersAction)
    ]


def _keys(action: argparse.Action) -> list[str]:
    """The file keys of ``action``, dashed: its long options, or its name if it has none."""
    longs = [o[2:].replace("_", "-") for o in action.option_strings if o.startswith("--")]
    return longs or [action.dest.replace("_", "-")]


def _key_index(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Dashed key -> action, for every settable action."""
    return {key: action for action in _settable(parser) for key in _keys(action)}


# ---------------------------------------------------------------- reading


@dataclass
class AppliedConfig:
    """What :func:`apply_config` did to a parser.

    Attributes:
        path: the configuration file.
        values: destination -> value, as the file gives it (validated).
        defaults: destination -> the default it replaced.
    """

    path: str
    values: dict[str, Any]
    defaults: dict[str, Any]


def config_path_in(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """The ``--config`` value among ``argv`` (the arguments after the command), or ``None``.

    Reads ``--config F``, ``--config=F`` and an unambiguous prefix of
    ``--config`` as argparse would (the last one wins); stops at ``--``.
    ``None`` also when ``parser``'s ``--config`` is a plugin's own.
    """
    if not _owns_config(parser):
        return None
    longs = [o for o in parser._option_string_actions if o.startswith("--")]
    found: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        is_config = name == "--config" or (
            parser.allow_abbrev
            and len(name) > 2
            and "--config".startswith(name)
            and [o for o in longs if o.startswith(name)] == ["--config"]
        )
        if is_config and eq:
            found = value
        elif is_config and i + 1 < len(argv):
            found = argv[i + 1]
            i += 1
        i += 1
    return found


def _load_toml(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """The TOML document at ``path``; a missing or malformed file is a one-line parser error."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        existing_file(path)
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"argument --config: {exc}")
    except OSError as exc:
        parser.error(f"argument --config: {path}: cannot read ({exc.strerror})")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        parser.error(f"{path}: not valid TOML: {exc}")


def _file_values(
    parser: argparse.ArgumentParser, path: str, command: str, commands: Collection[str]
) -> dict[str, tuple[str, Any]]:
    """Dashed key -> (key as written, value): the top level, then ``[command]`` over it.

    Tables named after other commands are skipped; two spellings of one key
    in one table (``batch-frames`` and ``batch_frames``) are an error.
    """
    data = _load_toml(parser, path)
    levels = [{k: v for k, v in data.items() if not (k in commands and isinstance(v, dict))}]
    if isinstance(data.get(command), dict):
        levels.append(data[command])
    merged: dict[str, tuple[str, Any]] = {}
    for level in levels:
        seen: dict[str, str] = {}
        for key, value in level.items():
            norm = key.replace("_", "-")
            if norm in seen:
                parser.error(f"{path}: keys {seen[norm]!r} and {key!r} are the same option")
            seen[norm] = key
            merged[norm] = (key, value)
    return merged


def _scalar_text(value: Any) -> str:
    """A TOML scalar as the text a flag would carry (``true``, ``32``, ``0.001``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    kind = "a table" if isinstance(value, dict) else f"a {type(value).__name__}"
    raise argparse.ArgumentTypeError(f"expected a string or a number, got {kind}")


def _convert_one(parser: argparse.ArgumentParser, action: argparse.Action, value: Any) -> Any:
    """One value through ``action``'s ``type=`` and ``choices``, as argparse does for a flag."""
    text = _scalar_text(value)
    func = parser._registry_get("type", action.type, action.type)
    if func is None:
        result: Any = text
    elif not callable(func):
        raise argparse.ArgumentTypeError(f"{func!r} is not callable")
    else:
        try:
            result = func(text)
        except argparse.ArgumentTypeError:
            raise
        except (TypeError, ValueError):
            name = getattr(action.type, "__name__", repr(action.type))
            raise argparse.ArgumentTypeError(f"invalid {name} value: {text!r}") from None
    if action.choices is not None and result not in action.choices:
        choices = ", ".join(map(repr, action.choices))
        raise argparse.ArgumentTypeError(f"invalid choice: {result!r} (choose from {choices})")
    return result


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, value: Any) -> Any:
    """A file value for ``action``: the value the flag would have left in the namespace.

    A switch (``store_true`` and kin) takes ``true``/``false``; an option of
    several values (``nargs``, ``append``) an array (a lone value is an array
    of one); a one-value option a scalar, or an array joined with commas (the
    comma-separated lists, ``methods = ["layercam", "gradcam"]``).
    """
    if isinstance(action, argparse.BooleanOptionalAction):
        if not isinstance(value, bool):
            raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
        return value
    if isinstance(action, argparse._StoreConstAction):  # store_true, store_false, store_const
        if not isinstance(value, bool):
            raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
        return action.const if value else action.default
    if isinstance(action, argparse._CountAction):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}")
        return value
    if isinstance(action, argparse._AppendConstAction) or action.nargs == 0:
        raise argparse.ArgumentTypeError("cannot be set from a file; give it on the command line")
    many = isinstance(action, argparse._AppendAction) or action.nargs not in (None, "?")
    if many:
        items = value if isinstance(value, list) else [value]
        if action.nargs == "+" and not items:
            raise argparse.ArgumentTypeError("expected at least one value, got []")
        if isinstance(action.nargs, int) and len(items) != action.nargs:
            raise argparse.ArgumentTypeError(f"expected {action.nargs} values, got {len(items)}")
        return [_convert_one(parser, action, item) for item in items]
    if isinstance(value, list):
        value = ",".join(_scalar_text(item) for item in value)
    return _convert_one(parser, action, value)


def apply_config(
    parser: argparse.ArgumentParser, path: str, *, command: str, commands: Collection[str]
) -> AppliedConfig:
    """Make the values of the file at ``path`` the defaults of ``parser`` (one command's).

    Flags parsed afterwards override them. Options the file supplies stop
    being required (a required option, a positional argument, a required
    group of mutually exclusive options); two options of one exclusive group
    in the file are an error.

    Args:
        parser: the command's sub-parser.
        path: the TOML file.
        command: the command's name (its table, ``[command]``, is read).
        commands: every command's name (their tables are skipped).

    Returns:
        What was applied, for :func:`settle_groups`.

    Raises:
        SystemExit: through ``parser.error`` (one line, exit 2) on an unreadable
            file, invalid TOML, an unknown key or a bad value; the message
            names the file and the key.
    """
    index = _key_index(parser)
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for norm, (key, value) in _file_values(parser, path, command, commands).items():
        action = index.get(norm)
        if action is None:
            valid = ", ".join(sorted({_keys(a)[0] for a in index.values()}))
            parser.error(
                f"{path}: unknown key {key!r} for {parser.prog}; valid keys: {valid} "
                f"(at the top level or under [{command}])"
            )
        if action.dest in values:
            parser.error(f"{path}: keys {keys[action.dest]!r} and {key!r} are the same option")
        try:
            values[action.dest] = _convert(parser, action, value)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{path}: key {key!r}: {exc}")
        keys[action.dest] = key
    defaults: dict[str, Any] = {}
    for action in _settable(parser):
        if action.dest not in values:
            continue
        defaults[action.dest] = action.default
        action.required = False
        if not action.option_strings:  # a positional argument: may now be left out
            action.nargs = "?" if action.nargs is None else "*"
    for group in parser._mutually_exclusive_groups:
        members = [a for a in group._group_actions if a.dest in values]
        if len(members) > 1:
            names = " and ".join(repr(keys[a.dest]) for a in members)
            parser.error(f"{path}: keys {names} cannot be used together")
        if members:
            group.required = False
    parser.set_defaults(**values)
    return AppliedConfig(path=path, values=values, defaults=defaults)


def settle_groups(
    parser: argparse.ArgumentParser, args: argparse.Namespace, applied: AppliedConfig
) -> None:
    """A flag of a mutually exclusive group given on the command line drops the file's member.

    (``localize``: ``localizer`` in the file, ``--method`` on the command
    line: the method is used, the file's localizer forgotten.)
    """
    for group in parser._mutually_exclusive_groups:
        from_file = [a for a in group._group_actions if a.dest in applied.values]
        given = [
            a
            for a in group._group_actions
            if a.dest not in applied.values and getattr(args, a.dest, None) != a.default
        ]
        if from_file and given:
            for action in from_file:
                setattr(args, action.dest, applied.defaults[action.dest])


# ---------------------------------------------------------------- writing


def resolved_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Key -> final value of every settable option of ``parser`` in ``args``.

    Keys are the first long option (dashed); switches are ``true``/``false``;
    options left at ``None`` are left out (their default is ``None`` too).
    """
    out: dict[str, Any] = {}
    for action in _settable(parser):
        if not hasattr(args, action.dest) or isinstance(action, argparse._AppendConstAction):
            continue
        value = getattr(args, action.dest)
        if isinstance(action, argparse._StoreConstAction):
            value = value == action.const
        if value is not None:
            out[_keys(action)[0]] = value
    return out


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string (control characters escaped)."""
    chars = (
        _ESCAPES.get(ch) or (f"\\u{ord(ch):04X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
        for ch in text
    )
    return '"' + "".join(chars) + '"'


def _toml_value(value: Any) -> str:
    """``value`` as TOML: bool, int, float, string, array; anything else as its ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    return _toml_string(os.fspath(value) if isinstance(value, os.PathLike) else str(value))


def dumps_toml(table: str, values: Mapping[str, Any], *, comments: Sequence[str] = ()) -> str:
    """One TOML table ``[table]`` of ``values`` (``None`` values left out), comments on top.

    Examples:
        >>> print(dumps_toml("train", {"lr": 0.001, "terms": ("pl", "crf"), "cache-dir": None}))
        [train]
        lr = 0.001
        terms = ["pl", "crf"]
        <BLANKLINE>
    """
    lines = [f"# {c}" for c in comments]
    lines.append(f"[{_toml_key(table)}]")
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def config_destination(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path | None:
    """Where the resolved config of this run goes, or ``None`` (no ``--out``).

    ``OUT/config.toml`` when ``--out`` is a folder (its ``type`` is
    ``output_dir``, it is a folder already, or it has no suffix and is not
    typed ``output_file``), else ``OUT.config.toml`` beside the file.
    """
    action = parser._option_string_actions.get("--out")
    out = getattr(args, action.dest, None) if action is not None else None
    if action is None or not out or not isinstance(out, (str, os.PathLike)):
        return None
    path = Path(out)
    folder = (
        action.type is output_dir
        or path.is_dir()
        or (action.type is not output_file and not path.suffix)
    )
    return path / "config.toml" if folder else path.with_name(path.name + ".config.toml")


def _main_process() -> bool:
    """Rank 0 of a ``torchrun`` job, or a single process: the one that writes.

    Read from torchrun's environment: the process group itself is set up
    inside the command (:mod:`colocam_plugin.distributed`).
    """
    from colocam_plugin.distributed import launched_rank

    return launched_rank() == 0


def save_resolved(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    command: str,
    *,
    since: float | None = None,
) -> Path | None:
    """Write the run's resolved config beside its ``--out`` (atomically); return its path.

    Args:
        parser: the command's sub-parser.
        args: the parsed arguments.
        command: the command's name (the file's table).
        since: after a failed run, the time it started: the config is written
            only if ``--out`` was (re)written since (a checkpoint a resumed
            run can continue), so a run that failed before writing anything
            leaves nothing behind. ``None``: the run succeeded, write it.

    Returns:
        The file written, or ``None`` (no ``--out``, nothing written since
        ``since``, or the write failed: then one warning line on stderr).
    """
    if not _main_process():
        return None
    dest = config_destination(parser, args)
    if dest is None:
        return None
    if since is not None:
        try:
            if Path(args.out).stat().st_mtime < since:
                return None
        except OSError:
            return None
    from colocam_plugin import __version__
    from colocam_plugin.atomic import atomic_write
    from colocam_plugin.errors import ColocamError

    text = dumps_toml(
        command,
        resolved_options(parser, args),
        comments=(
            f"colocam {command}: every option's final value (colocam {__version__})",
            f"repeat the run: colocam {command} --config {dest}",
        ),
    )
    try:
        with atomic_write(dest, encoding="utf-8") as fh:
            fh.write(text)
    except (OSError, UnicodeError, ColocamError) as exc:
        print(f"colocam: warning: {dest}: resolved config not saved ({exc})", file=sys.stderr)
        return None
    return dest


# ---------------------------------------------------------------- TensorBoard


@contextmanager
def tensorboard_mirror(command: str, args: argparse.Namespace) -> Iterator[Path | None]:
    """Mirror the command's CSV logs (:data:`CSV_LOGS`) into TensorBoard while the block runs.

    ``--tensorboard auto`` (the default) writes to ``OUT.tb/`` when the
    ``tensorboard`` package is installed and does nothing otherwise;
    ``none`` does nothing; a folder without the package is an error. Nothing
    is created until the first CSV row appears.

    Yields:
        The event folder, or ``None`` when nothing is mirrored.

    Raises:
        UsageError: ``--tensorboard DIR`` without the ``tensorboard`` package.
    """
    logs = CSV_LOGS.get(command)
    choice = getattr(args, "tensorboard", None)
    out = getattr(args, "out", None)
    if not logs or not out or choice in (None, "none") or not _main_process():
        yield None
        return
    installed = importlib.util.find_spec("tensorboard") is not None
    if not installed and choice != "auto":
        from colocam_plugin.errors import UsageError

        raise UsageError(
            f"--tensorboard {choice} needs the tensorboard package: pip install tensorboard "
            "(or --tensorboard none)"
        )
    if not installed:
        yield None
        return
    from colocam_plugin.train.tb import CsvMirror

    out_path = Path(out)
    logdir = out_path.with_name(out_path.name + ".tb") if choice == "auto" else Path(choice)
    sources = {tag: out_path.with_name(out_path.name + suffix) for tag, suffix in logs.items()}
    with CsvMirror(logdir, sources):
        yield logdir
