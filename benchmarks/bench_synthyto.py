"""SynthYTO's presets as CoLo-CAM's colour term sees them.

For each preset (``default``, then ``adversarial`` as the robustness row),
generated with one seed under ``--work``, over every annotated frame
(:func:`~colocam_plugin.data.synthyto_stats.synthyto_colour_stats`, the
paper's n = 4 frames per sequence and sigma = 15 on 0..255 RGB):

- kernel mass in box: of the colour-kernel mass the object's pixels receive
  from the 4 frames of their sequence, the share sent from inside the
  objects' boxes (1 - it is what the colour term can leak to the background);
- part to body: of the kernel mass the body's pixels receive from their
  frame, the share sent by the class part (what it can spread from the part
  to the body), beside the part's share of the object's pixels (about the
  value if part and body had one colour);
- box area share: box area over frame area.

    python benchmarks/bench_synthyto.py                    # seed 0, both presets
    python benchmarks/bench_synthyto.py --seed 1 --work runs/bench-synthyto

Writes ``benchmarks/results/synthyto.json`` and ``synthyto.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from colocam_plugin.data.synthyto import (
    GENERATOR_VERSION,
    MANIFEST,
    PRESETS,
    SynthYTOConfig,
    generate_synthyto,
    read_frame_table,
)
from colocam_plugin.data.synthyto_stats import synthyto_colour_stats

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("numpy", "torch", "pillow", "opencv-python-headless", "scikit-image", "scipy")


def versions() -> dict[str, str]:
    """Versions of what the pixels and the sums depend on (torch: for the record)."""
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def measure(preset: str, seed: int, work: Path) -> dict[str, Any]:
    """Generate (or reuse) one preset's tree and measure it."""
    cfg = SynthYTOConfig.preset(preset, seed=seed)
    root = work / f"{preset}-seed{seed}"
    t0 = time.perf_counter()
    cached = (root / MANIFEST).is_file() and json.loads((root / MANIFEST).read_text()).get(
        "config_hash"
    ) == cfg.hash
    generate_synthyto(root, cfg)
    generate_s = None if cached else round(time.perf_counter() - t0, 1)
    counts = json.loads((root / MANIFEST).read_text())["counts"]
    lengths: dict[str, int] = {}
    for rec in read_frame_table(root):
        lengths[rec["shot"]] = lengths.get(rec["shot"], 0) + 1
    t0 = time.perf_counter()
    stats = synthyto_colour_stats(root)
    return {
        "preset": preset,
        "config": cfg.to_dict(),
        "config_hash": cfg.hash,
        "counts": counts,
        "shot_frames": [min(lengths.values()), max(lengths.values())],
        "generate_s": generate_s,
        "measure_s": round(time.perf_counter() - t0, 1),
        **stats,
    }


def markdown(out: dict[str, Any]) -> str:
    lines = [
        "# SynthYTO presets: where the colour kernel reaches",
        "",
        f"Seed {out['seed']}, generator version {out['generator_version']}, colour kernel "
        f"sigma {out['rows'][0]['sigma']} on 0..255 RGB, sequences of "
        f"{out['rows'][0]['n_frames']} frames, every annotated frame (val and test). "
        f"Command: `{out['command']}`. Versions: "
        + ", ".join(f"{k} {v}" for k, v in out["versions"].items())
        + ".",
        "",
        "| preset | frames | shots | frames per shot | frames measured "
        "| kernel mass in box, mean (median) | part to body, mean | part area share, mean "
        "| box area share, mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in out["rows"]:
        lo, hi = r["shot_frames"]
        lines.append(
            f"| {r['preset']} | {r['counts']['frames']} | {r['counts']['shots']} | {lo}-{hi} "
            f"| {r['frames']} | {r['kernel_mass_in_box']['mean']:.3f} "
            f"({r['kernel_mass_in_box']['median']:.3f}) | {r['part_to_body']['mean']:.3f} "
            f"| {r['part_area_share']['mean']:.3f} | {r['box_area_share']['mean']:.3f} |"
        )
    lines += [
        "",
        "kernel mass in box: share of the colour-kernel mass that an annotated frame's "
        "object pixels receive from inside the boxes of the 4 frames of its sequence "
        "(the frame and the 3 before it; the first 4 near a shot's start), over all "
        "their pixels. part to body: share of the mass the body's pixels receive from "
        "the part's pixels, over all pixels of the frame; part area share: part pixels "
        "over object pixels. Sums over random "
        "subsets (1024 receivers, 4096 pixels per frame or sequence, fixed seed).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/bench-synthyto", help="where the trees go")
    parser.add_argument("--out", default=str(RESULTS / "synthyto"), help="<out>.json, <out>.md")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    rows = [measure(name, args.seed, Path(args.work)) for name in PRESETS]
    out = {
        "seed": args.seed,
        "generator_version": GENERATOR_VERSION,
        "command": " ".join(["python benchmarks/bench_synthyto.py", *argv]),
        "versions": versions(),
        "rows": rows,
    }
    base = Path(args.out)
    base.parent.mkdir(parents=True, exist_ok=True)
    base.parent.joinpath(base.name + ".json").write_text(json.dumps(out, indent=2) + "\n")
    base.parent.joinpath(base.name + ".md").write_text(markdown(out))
    print(markdown(out))
    return out


if __name__ == "__main__":
    main()
