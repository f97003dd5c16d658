"""Run the benchmarks by name: ``python -m benchmarks score losses --quick``.

Every ``benchmarks/bench_<name>.py`` is a benchmark called ``<name>``; each
runs in its own process (as ``python benchmarks/bench_<name>.py ...``, so a
crash or a thread setting in one cannot leak into the next) and writes its
JSON and Markdown into ``--out`` where the script takes one, else into
``benchmarks/results``.

    python -m benchmarks --list                  # names, with each script's first doc line
    python -m benchmarks score losses --quick    # CI-sized runs
    python -m benchmarks score --out /tmp/b -- --ref-n 100   # extra args go to every script
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: extra arguments for a CI-sized run, per benchmark (default: the script's own --quick, if any)
QUICK_ARGS: dict[str, list[str]] = {
    "score": ["--quick"],
    "losses": ["--quick"],
    "step": ["--quick"],
    "startup": ["--repeats", "2"],
    "kornia_ops": ["--repeats", "2"],
    "localize": ["--quick"],
    "cost": ["--quick", "--threads", "1"],
    "ablation": ["--seeds", "0", "--epochs", "1", "--classifier-epochs", "1"],
    "classifier": ["--seeds", "0", "--classifier-epochs", "1"],
    "curves": ["--epochs", "1", "--classifier-epochs", "1", "--repeats", "1"],
}


def discover() -> dict[str, Path]:
    """``{name: script}`` for every ``bench_<name>.py`` beside this file, sorted by name."""
    return {p.stem[len("bench_") :]: p for p in sorted(HERE.glob("bench_*.py"))}


def describe(script: Path) -> str:
    """The first line of a script's module docstring (without importing it)."""
    try:
        doc = ast.get_docstring(ast.parse(script.read_text()))
    except (OSError, SyntaxError):
        doc = None
    return (doc or "").strip().splitlines()[0] if doc else ""


def _options(script: Path) -> set[str]:
    """The ``--flags`` a script declares (read from its source, not by importing it)."""
    return set(re.findall(r"[\"'](--[a-z0-9][a-z0-9-]*)[\"']", script.read_text()))


def command(
    name: str, script: Path, *, quick: bool, out: Path | None, extra: list[str]
) -> list[str]:
    """The command line that runs one benchmark."""
    args = [sys.executable, str(script)]
    opts = _options(script)
    if quick:
        quick_args = QUICK_ARGS.get(name, ["--quick"] if "--quick" in opts else [])
        args += [a for a in quick_args if not a.startswith("--") or a in opts or a == "--quick"]
    if out is not None and "--out" in opts:
        args += ["--out", str(out)]
    return args + extra


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    found = discover()
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (see --list)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--quick", action="store_true", help="CI-sized runs")
    ap.add_argument("--out", type=Path, help="results folder (default: benchmarks/results)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args(argv)
    if args.list or not args.names:
        width = max(map(len, found), default=0)
        for name, script in found.items():
            print(f"{name:<{width}}  {describe(script)}")
        return 0
    unknown = [n for n in args.names if n not in found]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(found)}")
    failed = []
    for name in args.names:
        cmd = command(name, found[name], quick=args.quick, out=args.out, extra=extra)
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        if args.dry_run:
            continue
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=HERE.parent, env=os.environ.copy(), check=False).returncode
        print(f"== {name}: exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
