"""``python -m benchmarks``: the list, and one tiny benchmark end to end (``score --quick``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip


def test_list_names_every_bench_script():
    res = _run("--list")
    assert res.returncode == 0, res.stderr
    names = {line.split()[0] for line in res.stdout.splitlines() if line.strip()}
    scripts = {p.stem[len("bench_") :] for p in (REPO / "benchmarks").glob("bench_*.py")}
    assert names == scripts
    assert "score" in names and "losses" in names


def test_unknown_name_is_refused_with_the_list():
    res = _run("no_such_bench")
    assert res.returncode == 2
    assert "unknown benchmark(s) no_such_bench; available:" in res.stderr


def test_score_quick_writes_json_and_markdown(tmp_path):
    res = _run("score", "--quick", "--out", str(tmp_path), "--", "--kinds", "noisy", "--n", "6")
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads((tmp_path / "score.json").read_text())
    assert {"benchmark", "rows", "env", "command"} <= result.keys()
    env = result["env"]
    for key in ("git_commit", "python", "numpy", "opencv", "opencv_threads", "device", "cpu"):
        assert env.get(key) is not None, key
    (row,) = result["rows"]
    assert row["kind"] == "noisy" and row["cams"] == 6 and row["thresholds"] == 100
    assert row["identical"] is True
    assert row["command_wall_s"] > 0 and row["loop_wall_s"] > 0
    md = (tmp_path / "score.md").read_text()
    assert "| noisy |" in md and env["git_commit"] in md
