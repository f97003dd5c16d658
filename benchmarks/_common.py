"""What every benchmark records beside its figures, and how it writes them.

Each ``bench_*.py`` stays runnable on its own; this module only factors out
the metadata (versions, device, threads, git commit, machine load) and the
JSON + Markdown writing, so that every results file says where it came from.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def git_commit() -> str:
    """Short commit of the checkout, ``+dirty`` when tracked files differ; "unknown" outside git."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
            )
        except OSError:
            return ""
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment(device: str = "cpu") -> dict[str, Any]:
    """Versions, device, threads, git commit and load average, JSON-ready.

    Only libraries already imported by the benchmark are reported (importing
    torch here would add seconds to benchmarks that do not use it).
    """
    env: dict[str, Any] = {
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }
    if "numpy" in sys.modules:
        env["numpy"] = sys.modules["numpy"].__version__
    if "cv2" in sys.modules:
        cv2 = sys.modules["cv2"]
        env["opencv"] = cv2.__version__
        env["opencv_threads"] = cv2.getNumThreads()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            env["device_name"] = torch.cuda.get_device_name(0)
    return env


def env_line(env: dict[str, Any]) -> str:
    """One Markdown line summarising :func:`environment`'s output."""
    libs = ", ".join(
        f"{k} {env[k]}" for k in ("python", "numpy", "opencv", "torch") if env.get(k) is not None
    )
    threads = ", ".join(
        f"{k} {env[k]}"
        for k in ("opencv_threads", "torch_threads", "omp_num_threads")
        if env.get(k) is not None
    )
    return (
        f"Commit {env['git_commit']}; {env['cpu']} ({env['cpu_count']} cores), device "
        f"{env.get('device_name', env['device'])}; {libs}; threads: {threads or 'default'}; "
        f"load average {env['load_average']}."
    )


def write_results(out_dir: Path, name: str, result: dict[str, Any], markdown: list[str]) -> None:
    """Write ``<out_dir>/<name>.json`` and ``<name>.md`` (creating the folder)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out_dir / f"{name}.md").write_text("\n".join(markdown).rstrip() + "\n")
