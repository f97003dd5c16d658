"""Start-up is a feature: ``colocam --help`` imports nothing heavy and never
depends on a third-party plugin (timings: benchmarks/bench_startup.py)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import types

import pytest

from colocam_plugin import hookimpl
from colocam_plugin.cli.main import _command_in, build_parser, main

HEAVY = ("torch", "torchvision", "scipy", "sklearn", "pytorch_grad_cam", "cv2", "kornia", "timm")

#: runs ``colocam ARGS`` as ``python -m colocam_plugin`` does, then prints the heavy
#: modules left in sys.modules (``-X importtime`` misses importlib.import_module)
PROBE = f"""
import atexit, runpy, sys
atexit.register(lambda: print("HEAVY=" + ",".join(
    m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr))
runpy.run_module("colocam_plugin", run_name="__main__", alter_sys=True)
"""



def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLOCAM_")}
    return {**env, **extra}


def _probe(
    args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    lines = proc.stderr.splitlines()
    heavy = [ln.removeprefix("HEAVY=") for ln in lines if ln.startswith("HEAVY=")]
    assert heavy, proc.stderr
    proc.stderr = "\n".join(ln for ln in lines if not ln.startswith("HEAVY="))
    return proc, [m for m in heavy[-1].split(",") if m]


@pytest.mark.parametrize(
    "args", [["--help"], ["score", "--help"], ["methods"], ["datasets"], ["plugins"]]
)
def test_startup_imports_nothing_heavy(args):
    proc, heavy = _probe(args, _env())
    assert proc.returncode == 0, proc.stderr
    assert heavy == []


def test_methods_lists_gradcam_baselines_without_importing_them():
    proc, heavy = _probe(["methods"], _env())
    assert {"cam", "gradcam", "layercam", "scorecam", "localizer"} <= set(proc.stdout.split())
    assert heavy == []


def _broken_distribution(site: os.PathLike[str] | str) -> None:
    """A dist-info on ``site`` whose ``colocam`` entry point names a missing module."""
    info = os.path.join(site, "colocam_broken-0.1.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: colocam-broken\nVersion: 0.1\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[colocam]\nbroken = colocam_broken_plugin_xyz\n")


@pytest.mark.parametrize("args", [["--help"], ["methods"]])
def test_broken_plugin_is_one_warning_and_the_rest_works(tmp_path, args):
    _broken_distribution(tmp_path)
    env = _env(
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    )
    proc, heavy = _probe(args, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "colocam: warning: plugin 'broken' (entry point broken = colocam_broken_plugin_xyz, "
        "distribution colocam-broken 0.1) failed to load and is skipped: "
        "ModuleNotFoundError: No module named 'colocam_broken_plugin_xyz'"
    ]
    assert ("usage: colocam" in proc.stdout) if args == ["--help"] else ("localizer" in proc.stdout)
    assert heavy == []


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([], None),
        (["--help"], None),
        (["-v", "--version"], None),
        (["score", "--help"], "score"),
        (["-v", "methods", "grad*"], "methods"),
        (["--", "methods"], "methods"),
        (["nosuch"], "nosuch"),
    ],
)
def test_command_in(argv, command):
    assert _command_in(argv) == command


class _FakeDist:
    def __init__(self, name: str, entry_points: list[importlib.metadata.EntryPoint]):
        self.metadata = {"name": name}
        self.entry_points = entry_points
        self.version = "1.0"

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def _normalized_name(self) -> str:
        return self.name


@pytest.fixture
def exploding_command(monkeypatch):
    """A third-party plugin whose command's factory raises; records its calls."""
    calls: list[str] = []
    mod = types.ModuleType("exploding_command_ext")

    def factory(parser):
        calls.append("factory")
        raise RuntimeError("this command's parser is broken")

    @hookimpl
    def colocam_register_commands(registry):
        registry.add("explode", factory, help="a command of a third-party plugin")

    mod.colocam_register_commands = colocam_register_commands  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "exploding_command_ext", mod)
    ep = importlib.metadata.EntryPoint("explode", "exploding_command_ext", "colocam")
    dist = _FakeDist("colocam-explode", [ep])
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: iter([dist]))
    monkeypatch.delenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("COLOCAM_BLOCK_PLUGINS", raising=False)
    return calls


def test_help_calls_no_command_factory(exploding_command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "explode" in out and "a command of a third-party plugin" in out
    assert exploding_command == []


def test_only_the_command_run_builds_its_parser(exploding_command, capsys):
    assert main(["datasets"]) == 0
    assert "synthyto" in capsys.readouterr().out.split()
    assert exploding_command == []
    with pytest.raises(RuntimeError, match="parser is broken"):
        build_parser("explode")
    assert exploding_command == ["factory"]
