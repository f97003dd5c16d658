"""mkdocs hook: pages generated at build time, never copied by hand.

A page containing one of these markers gets it replaced:

``<!-- colocam:cli -->``
    the ``--help`` of ``colocam`` and of every built-in command, as the
    argparse parsers print it (``python -m colocam_plugin CMD --help``,
    third-party plugins not loaded, 100 columns).
``<!-- colocam:results -->``
    every ``benchmarks/results/*.md`` (what the benchmark commands wrote), one
    section each, headings moved one level down.

A command whose ``--help`` fails fails the build.

The docstrings rendered by mkdocstrings use Sphinx roles (``:class:`X```);
:func:`on_page_content` shows them as plain code, and a Sphinx ``::`` as ``:``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLI_MARKER = "<!-- colocam:cli -->"
RESULTS_MARKER = "<!-- colocam:results -->"

_cache: dict[str, str] = {}


def _colocam(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLOCAM_")}
    env |= {"COLOCAM_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "100", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "colocam_plugin", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"colocam {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout.rstrip()


def _command_names() -> list[str]:
    code = (
        "from colocam_plugin.api import get_registries\n"
        "print('\\n'.join(get_registries().commands.names()))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLOCAM_")}
    env["COLOCAM_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.split()


def cli_reference() -> str:
    """Markdown: ``colocam --help``, then one section per command with its ``--help``."""
    if "cli" not in _cache:
        names = _command_names()
        with ThreadPoolExecutor(max_workers=4) as pool:
            helps = list(pool.map(lambda n: _colocam(n, "--help"), names))
        parts = ["## colocam", "", "```text", _colocam("--help"), "```", ""]
        for name, text in zip(names, helps, strict=True):
            parts += [f"## colocam {name}", "", "```text", text, "```", ""]
        _cache["cli"] = "\n".join(parts)
    return _cache["cli"]


def results_tables() -> str:
    """Markdown: every ``benchmarks/results/*.md``, one section each."""
    parts = []
    results = ROOT / "benchmarks" / "results"
    for path in sorted(results.rglob("*.md")):
        rel = path.relative_to(results)
        text = path.read_text(encoding="utf-8").strip()
        # one level down: the file's "# Title" becomes a section of this page
        text = re.sub(r"^(#{1,5}) ", r"#\1 ", text, flags=re.M)
        title, _, body = text.partition("\n") if text.startswith("## ") else ("", "", text)
        title = title.removeprefix("## ").strip() or rel.stem
        # images beside a results file are published under results-img/ (on_files)
        body = re.sub(r"\]\(([\w.-]+\.png)\)", r"](results-img/\1)", body)
        parts.append(f"## {title} ({rel})\n\n*File `benchmarks/results/{rel}`.*\n\n{body.strip()}")
    return "\n\n".join(parts)


_ROLE = re.compile(r":(?:class|mod|data|func|meth|attr|exc|obj):<code>(~?)([^<]*)</code>")


def _role(match: re.Match[str]) -> str:
    """``:class:`~a.b.C``` shows ``C``, ``:class:`a.b.C``` shows ``a.b.C`` (as Sphinx)."""
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Sphinx roles left in rendered docstrings become plain code."""
    return _ROLE.sub(_role, html).replace("::</p>", ":</p>")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace the markers of the module docstring."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if RESULTS_MARKER in markdown:
        markdown = markdown.replace(RESULTS_MARKER, results_tables())
    return markdown


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    """Publish the plots beside the benchmark results (``benchmarks/results/*.png``)."""
    from mkdocs.structure.files import File

    for png in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        files.append(File.generated(config, f"results-img/{png.name}", abs_src_path=str(png)))
    return files
