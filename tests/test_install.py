"""A plain ``pip install colocam-plugin`` is enough: built wheel into a fresh venv.

The wheel is built from a copy of the sources (``pip wheel --no-deps``),
installed with its declared dependencies (no extras, no environment
variables) into a plain venv (no ``--system-site-packages``: a missing
dependency fails the test), and the CLI is run outside the checkout.
pip resolves every name from the machine's local indexes, as ``make venv``
does; only torch is pinned to the build this machine serves.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: the torch builds this machine serves from local disk (the Makefile's TORCH_PINS)
TORCH_PINS = (
    ["torch==2.9.1", "torchvision==0.24.1"]
    if platform.machine() == "aarch64"
    else ["torch==2.14.1", "torchvision==0.29.1"]
)

PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
EVAL_ARGS = ["--classifier", "demo/classifier.pt", "--no-progress"]

GRADCAM_BASELINES = {
    "cam",
    "gradcam",
    "gradcampp",
    "xgradcam",
    "layercam",
    "hirescam",
    "eigencam",
    "scorecam",
}


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user who activated ``venv``: no checkout on any path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COLOCAM_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    env["HF_HUB_OFFLINE"] = "1"
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    return env


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def _copy_sources(dst: Path) -> Path:
    """What the wheel is built from, copied (the build writes build/ and egg-info)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    dst.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "colocam_plugin", dst / "colocam_plugin", ignore=ignore)
    shutil.copytree(ROOT / "adapters", dst / "adapters", ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(venv, work dir outside the checkout) with only the wheel and its dependencies."""
    tmp = tmp_path_factory.mktemp("install")
    src = _copy_sources(tmp / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLOCAM_")}
    _run(
        [*PIP_WHEEL, "-w", str(tmp / "dist"), str(src)],
        cwd=tmp,
        env=env,
        timeout=600,
    )
    (wheel,) = (tmp / "dist").glob("colocam_plugin-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp, env=env, timeout=300)
    work = tmp / "work"
    work.mkdir()
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), *TORCH_PINS],
        cwd=work,
        env=_clean_env(venv),
        timeout=1800,
    )
    return venv, work


@pytest.mark.slow
def test_wheel_alone_lists_the_gradcam_baselines(installed):
    venv, work = installed
    env = _clean_env(venv)
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import colocam_plugin, colocam_gradcam; "
            "print(colocam_plugin.__file__); print(colocam_gradcam.__file__)",
        ],
        cwd=work,
        env=env,
        timeout=120,
    )
    for path in where.split():  # imported from the venv, not from the checkout
        assert Path(path).is_relative_to(venv), path
    methods = set(
        _run([str(venv / "bin" / "colocam"), "methods"], cwd=work, env=env, timeout=120).split()
    )
    assert GRADCAM_BASELINES | {"localizer"} <= methods
    plugins = _run([str(venv / "bin" / "colocam"), "plugins"], cwd=work, env=env, timeout=120)
    rows = [line.split("\t") for line in plugins.splitlines()]
    assert [r[1].split()[0] for r in rows if r[0] == "gradcam"] == ["colocam-plugin"]


@pytest.mark.slow
def test_wheel_alone_runs_demo_quick_and_evaluate_defaults(installed):
    """``colocam demo --quick`` then ``colocam evaluate`` with its defaults (``--methods``)."""
    venv, work = installed
    env = _clean_env(venv)
    colocam = str(venv / "bin" / "colocam")
    _run(
        [colocam, "demo", "--quick", "--no-progress", "--out", "demo"],
        cwd=work,
        env=env,
        timeout=900,
    )
    assert (work / "demo" / "results.md").is_file()
    out = _run(
        [colocam, "evaluate", "--dataset", "yto-v1.0", "--root", "demo/synthyto", *EVAL_ARGS],
        cwd=work,
        env=env,
        timeout=600,
    )
    assert "| layercam |" in out  # evaluate's default method, from the grad-cam adapter


def test_adapter_is_registered_once_by_the_main_distribution(monkeypatch):
    """The grad-cam adapter ships in colocam-plugin: no separate colocam-gradcam is installed."""
    import importlib.metadata

    from colocam_plugin.plugins import get_plugin_manager

    dists = {
        d.metadata["Name"]
        for d in importlib.metadata.distributions()
        for ep in d.entry_points
        if ep.group == "colocam" and ep.value == "colocam_gradcam.plugin"
    }
    assert dists == {"colocam-plugin"}
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("colocam-gradcam")
    monkeypatch.delenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("COLOCAM_BLOCK_PLUGINS", raising=False)
    pm = get_plugin_manager()
    adapters = [
        name
        for name, plugin in pm.list_name_plugin()
        if plugin is not None and getattr(plugin, "__name__", "") == "colocam_gradcam.plugin"
    ]
    assert adapters == ["gradcam"]
