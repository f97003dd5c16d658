"""Start-up time of the ``colocam`` command line (target: ``--help`` under 1 s).

Runs each command in a fresh interpreter (``python -m colocam_plugin ...``,
what the ``colocam`` script does) once to warm the file cache, then
``--repeats`` times, and reports the median wall time. Side by side, the same
command with entry-point plugins off (``COLOCAM_DISABLE_PLUGIN_AUTOLOAD=1``)
shows what the installed plugins cost. One more run per command records
which heavy modules (torch, scipy, pytorch_grad_cam, ...) it left in
``sys.modules``. Writes ``benchmarks/results/startup.json`` and ``startup.md``.

    python benchmarks/bench_startup.py                # the recorded run (7 repeats)
    python benchmarks/bench_startup.py --repeats 3 --out /tmp/startup
    python benchmarks/bench_startup.py --baseline /tmp/before/startup.json   # side by side
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]

#: (label, arguments of ``colocam``); ``None``: the interpreter alone (``python -c pass``)
COMMANDS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("python -c pass", None),
    ("colocam --help", ("--help",)),
    ("colocam score --help", ("score", "--help")),
    ("colocam methods", ("methods",)),
    ("colocam train --help", ("train", "--help")),
)

#: commands that must start in under TARGET_S seconds (median)
TARGETS = ("colocam --help", "colocam score --help")
TARGET_S = 1.0

#: top-level modules that a start-up must not import
HEAVY = ("torch", "torchvision", "scipy", "sklearn", "pytorch_grad_cam", "cv2", "kornia", "timm")

#: runs ``colocam ARGS`` as ``python -m colocam_plugin`` does, then prints the
#: heavy modules it imported (``-X importtime`` misses ``importlib.import_module``)
PROBE = f"""
import atexit, runpy, sys
atexit.register(lambda: print("HEAVY=" + ",".join(
    m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr))
runpy.run_module("colocam_plugin", run_name="__main__", alter_sys=True)
"""


def _python_args(args: tuple[str, ...] | None) -> list[str]:
    return ["-c", "pass"] if args is None else ["-m", "colocam_plugin", *args]


def _env(plugins: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLOCAM_")}
    if not plugins:
        env["COLOCAM_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def _run(args: tuple[str, ...] | None, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *_python_args(args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{_python_args(args)} exited {proc.returncode}:\n{proc.stderr.decode()}")
    return wall


def time_command(
    args: tuple[str, ...] | None, env: dict[str, str], repeats: int
) -> dict[str, float]:
    """Median, min and max wall seconds of ``repeats`` runs after one warm-up run."""
    _run(args, env)
    walls = [_run(args, env) for _ in range(repeats)]
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls)}


def heavy_imports(args: tuple[str, ...] | None, env: dict[str, str]) -> list[str]:
    """Heavy top-level modules in ``sys.modules`` after one run of ``colocam ARGS``."""
    if args is None:
        return []
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    found = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")]
    if not found:
        raise SystemExit(f"probe of {args} printed no HEAVY= line:\n{proc.stderr}")
    return [m for m in found[-1].removeprefix("HEAVY=").split(",") if m]


def _git_commit() -> str:
    def git(*a: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *a], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _plugins() -> list[str]:
    import importlib.metadata

    return sorted(
        f"{ep.name} = {ep.value}" for ep in importlib.metadata.entry_points(group="colocam")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per command (default 7)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of startup.json/.md")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="a startup.json of an earlier run (say, before a change) to show side by side",
    )
    args = ap.parse_args(argv)
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    before = {r["command"]: r for r in baseline["results"]} if baseline else {}

    rows = []
    for label, cmd in COMMANDS:
        row = {
            "command": label,
            "plugins_on": time_command(cmd, _env(True), args.repeats),
            "plugins_off": time_command(cmd, _env(False), args.repeats),
            "heavy_imports": heavy_imports(cmd, _env(True)),
        }
        rows.append(row)
        on, off = row["plugins_on"]["median_s"], row["plugins_off"]["median_s"]
        print(f"{label:24s} {on:6.3f} s  (plugins off {off:6.3f} s)  {row['heavy_imports']}")

    medians = {r["command"]: r["plugins_on"]["median_s"] for r in rows}
    record = {
        "benchmark": "startup",
        "repeats": args.repeats,
        "target_s": TARGET_S,
        "targets_met": all(medians[c] < TARGET_S for c in TARGETS),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "entry_point_plugins": _plugins(),
        "results": rows,
        "baseline": baseline and {k: baseline[k] for k in ("git_commit", "results")},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(record, indent=2) + "\n")

    lines = [
        "# Start-up time of the `colocam` command line",
        "",
        f"Median wall seconds of {args.repeats} runs (after one warm-up) in a fresh "
        f"`python -m colocam_plugin` process; target under {TARGET_S:g} s for "
        f"{' and '.join(f'`{c}`' for c in TARGETS)}. Python {record['python']}, "
        f"{record['cpus']} CPUs, load average {record['load_average']}, commit "
        f"`{record['git_commit']}`, entry-point plugins: "
        f"{', '.join(f'`{p}`' for p in record['entry_point_plugins']) or 'none'}.",
        "",
        "| command | median s | min s | max s | plugins off: median s | heavy imports |"
        + (f" baseline `{baseline['git_commit']}`: median s | heavy imports |" if baseline else ""),
        "|---|---:|---:|---:|---:|---|" + ("---:|---|" if baseline else ""),
    ]
    for r in rows:
        on, off = r["plugins_on"], r["plugins_off"]
        line = (
            f"| `{r['command']}` | {on['median_s']:.3f} | {on['min_s']:.3f} | {on['max_s']:.3f} "
            f"| {off['median_s']:.3f} | {', '.join(r['heavy_imports']) or 'none'} |"
        )
        if baseline:
            b = before.get(r["command"])
            line += (
                f" {b['plugins_on']['median_s']:.3f} | {', '.join(b['heavy_imports']) or 'none'} |"
                if b
                else " | |"
            )
        lines.append(line)
    command = f"python benchmarks/bench_startup.py --repeats {args.repeats}"
    if baseline:
        command += " --baseline BEFORE/startup.json"
    lines += ["", f"Command: `{command}`.", ""]
    (args.out / "startup.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'startup.json'} and {args.out / 'startup.md'}")
    return 0 if record["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
