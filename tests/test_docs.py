"""The docs site and the plugin tutorial's example package.

``docs/examples/colocam-example-plugin`` is built and installed into a
temporary folder (``pip install --target``) and exercised through the
``colocam`` command line and the registries, as the tutorial shows; the site
is built with ``mkdocs build --strict`` (slow).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "colocam-example-plugin"


def _env(*paths: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLOCAM_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """The example package, built from a copy and installed into its own folder."""
    tmp = tmp_path_factory.mktemp("example")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    site = tmp / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    _run([*pip, "--target", str(site), str(src)], _env(), tmp)
    return site


def test_example_plugin_is_listed_by_the_cli(example_site, tmp_path):
    env = _env(example_site)
    methods = _run([sys.executable, "-m", "colocam_plugin", "methods"], env, tmp_path).split()
    assert "centre-prior" in methods and "localizer" in methods
    assert (
        "centre-prior"
        not in _run([sys.executable, "-m", "colocam_plugin", "methods"], _env(), tmp_path).split()
    )  # it is the installed package that adds it
    plugins = _run([sys.executable, "-m", "colocam_plugin", "plugins"], env, tmp_path)
    row = next(line.split("\t") for line in plugins.splitlines() if line.startswith("example\t"))
    assert row[1] == "colocam-example-plugin 0.1.0"
    assert row[2].split(",") == ["colocam_register_cam_methods", "colocam_register_metrics"]


EXERCISE = """
import json, sys
import numpy as np
import torch
import colocam_plugin as cc
from colocam_plugin.api import get_registries

assert "torch" in sys.modules
method = cc.create_cam_method("centre-prior", sigma=0.3)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))
out = method(model, torch.rand(2, 3, 24, 32), None)
peak = [divmod(int(c.argmax()), 32) for c in out.cams]
# as the harness creates it: its context, which the factory takes and ignores
metric = get_registries().metrics.create("pointing-game", thresholds=1000, num_classes=3)
centre, corner = np.array([[12.0, 8.0, 20.0, 16.0]]), np.array([[0.0, 0.0, 4.0, 4.0]])
metric.update(out.cams, torch.tensor([0, 1]), [centre, corner])
print(json.dumps({
    "shape": list(out.cams.shape), "min": float(out.cams.min()), "max": float(out.cams.max()),
    "logits": list(out.logits.shape), "peak": peak, "scores": metric.compute(),
}))
"""


def test_example_plugin_method_and_metric_work(example_site, tmp_path):
    import json

    got = json.loads(_run([sys.executable, "-c", EXERCISE], _env(example_site), tmp_path))
    assert got["shape"] == [2, 24, 32] and got["logits"] == [2, 3]
    assert got["min"] == 0.0 and got["max"] == 1.0
    assert got["peak"] == [[11, 15], [11, 15]]  # the centre of a 24 x 32 map
    assert got["scores"] == {"pointing_game": 50.0}  # inside the centre box, not the corner one


def test_example_metric_is_a_column_of_colocam_evaluate(example_site, tmp_path):
    import json

    from colocam_plugin.data.testing import write_frames_tree
    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.train.checkpoint import save_checkpoint

    write_frames_tree(tmp_path / "data")
    model = WGAPClassifier("resnet18", 2, weights=None)
    state = {"kind": "classifier", "config": model.config, "classes": ["cat", "person"]}
    clf = save_checkpoint(tmp_path / "clf.pt", {**state, "state_dict": model.state_dict()})
    out = tmp_path / "scores.json"
    args = [sys.executable, "-m", "colocam_plugin", "evaluate", "--dataset", "frames"]
    args += ["--root", str(tmp_path / "data"), "--classifier", str(clf), "--device", "cpu"]
    args += ["--methods", "centre-prior", "--image-size", "32", "--thresholds", "10"]
    table = _run([*args, "--json", str(out), "--no-progress"], _env(example_site), tmp_path)
    scores = json.loads(out.read_text())["centre-prior"]
    assert scores["num_frames"] == 2 and 0.0 <= scores["pointing_game"] <= 100.0
    head = next(line for line in table.splitlines() if line.startswith("| method |"))
    row = next(line for line in table.splitlines() if line.startswith("| centre-prior |"))
    assert head.endswith("| frame acc | pointing_game |")
    assert row.endswith(f" | {scores['pointing_game']:.4g} |")


def test_example_plugin_module_imports_nothing_heavy(example_site, tmp_path):
    code = (
        "import sys, colocam_example.plugin\n"
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    assert _run([sys.executable, "-c", code], _env(example_site), tmp_path).strip() == "[]"


def _text(page: Path) -> str:
    """A built page's text: tags removed (code is split into highlighted spans)."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed (extra 'docs')"
)
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the CLI reference is the parsers' own help
    cli = (site / "cli" / "index.html").read_text()
    for command in ("evaluate", "gallery", "demo", "train"):
        assert f'id="colocam-{command}"' in cli
    assert "--max-frames MAX_FRAMES" in cli
    # every hook has a reference entry, from its docstring
    from colocam_plugin import hookspecs

    hooks = (site / "hooks" / "index.html").read_text()
    names = [n for n in dir(hookspecs) if n.startswith("colocam_")]
    assert names and all(f'id="colocam_plugin.hookspecs.{n}"' in hooks for n in names)
    # the results page includes the benchmark files as they are
    results = (site / "results" / "index.html").read_text()
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        row = next(ln for ln in path.read_text().splitlines() if re.match(r"\|[^-|]", ln))
        first_cell = row.strip("|").split("|")[0].strip()
        assert path.name in results and first_cell.split("`")[0].split("*")[0] in results
    # the tutorial shows the example package's files
    tutorial = _text(site / "plugin-tutorial" / "index.html")
    assert "colocam_register_metrics" in tutorial and "class PointingGame" in tutorial
    assert (site / "img" / "html_gallery.jpg").is_file()
