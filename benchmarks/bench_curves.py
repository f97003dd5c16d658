"""Stage-2 training curves and loss diagnostics: val CorLoc and each term's pull, per step.

For one dataset and seed, trains the demo's stage-1 classifier (EfficientNet-
Lite0, ImageNet weights) at each ``--output-stride``, then every stage-2
variant for ``--epochs`` epochs of ``--repeats`` passes over the shots, scoring
the model on the val split (annotated frames of the training videos) every
``--eval-every`` steps. Each run's per-step log (``<run>.pt.log.csv``: every
loss term, its gradient norm at the decoder's output, the mean foreground
probability) and its curve (``<run>.pt.val.csv``) stay in ``--work``.

    python benchmarks/bench_curves.py --dataset synthyto --lambdas 0 0.25 1 4
    python benchmarks/bench_curves.py --dataset realyto --output-stride 32 8

Writes ``<out>.json``, ``<out>.md`` (the curves as a table, the terms'
gradient norms early/late) and ``<out>.png`` (the curves).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from colocam_plugin.pipeline import train_stage1, train_stage2
from colocam_plugin.recipes import stage1_config
from colocam_plugin.train.checkpoint import versions
from colocam_plugin.train.stage2 import TERMS

RESULTS = Path(__file__).resolve().parent / "results"


def make_data(dataset: str, work: Path, seed: int) -> Path:
    if dataset == "synthyto":
        from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto

        return generate_synthyto(work / "data", SynthYTOConfig(seed=seed))
    if dataset == "synthyto-adversarial":
        from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto

        return generate_synthyto(work / "data", SynthYTOConfig.preset("adversarial", seed=seed))
    from colocam_plugin.data.realyto import RealYTOConfig, generate_realyto

    return generate_realyto(work / "data", RealYTOConfig(seed=seed))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def summarise(run: Path) -> dict[str, Any]:
    """The curve and the terms' mean values and gradient norms over the first and last 20%."""
    log = _read_csv(run.with_name(run.name + ".log.csv"))
    curve = _read_csv(run.with_name(run.name + ".val.csv"))
    cut = max(1, len(log) // 5)
    windows = {"early": log[:cut], "late": log[-cut:]}
    terms: dict[str, dict[str, float | None]] = {}
    for name, rows in windows.items():
        for col in (*TERMS, *(f"grad_{t}" for t in TERMS), "grad_total", "fg_mean"):
            vals = [float(r[col]) for r in rows if r.get(col, "") != ""]
            terms.setdefault(col, {})[name] = statistics.mean(vals) if vals else None
    return {
        "steps": len(log),
        "curve": [
            {"step": int(r["step"]), "corloc": float(r["corloc"]), "mean_iou": float(r["mean_iou"])}
            for r in curve
        ],
        "terms": terms,
    }


def layercam_val(clf: Path, data: Path, image_size: int, device: str) -> dict[str, float]:
    """The pseudo-labels' source, scored like the curves (val, 250 thresholds)."""
    from colocam_plugin.api import create_cam_method, create_dataset
    from colocam_plugin.harness import validation_scores
    from colocam_plugin.train.stage1 import load_classifier

    val = create_dataset("yto-v1.0", data, "val")
    return validation_scores(
        load_classifier(clf, device=device),
        val.frames,
        create_cam_method("layercam"),
        num_classes=len(val.classes),
        image_size=image_size,
        device=device,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work) / f"{args.dataset}-seed{args.seed}"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = make_data(args.dataset, work, args.seed)
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    for stride in args.output_stride:
        clf = work / f"classifier-os{stride}.pt"
        cached = work / f"classifier-os{stride}.summary.json"
        if args.report_only:
            if not cached.is_file():
                raise SystemExit(f"--report-only: {cached} not found (run without it first)")
            block = json.loads(cached.read_text())
        else:
            _, acc = train_stage1(
                "yto-v1.0",
                data,
                clf,
                config=stage1_config(args.classifier_epochs, args.image_size, args.seed),
                output_stride=stride,
                pretrained="efficientnet-lite0",
                device=device,
                progress=False,
            )
            print(f"os{stride} classifier: test accuracy {acc:.1f}%", flush=True)
            block = {"classifier_test_accuracy": acc}
            block["layercam_val"] = layercam_val(clf, data, args.image_size, device)
            print(f"os{stride} LayerCAM val {block['layercam_val']}", flush=True)
            cached.write_text(json.dumps(block, indent=2) + "\n")
        block["runs"] = {}
        out[f"os{stride}"] = block
        variants: dict[str, dict[str, Any]] = {
            "F-CAM": {"method": "fcam", "repeats_per_epoch": 4 * args.repeats},
        }
        for lam in args.lambdas:
            variants[f"CoLo-CAM lambda_c={lam:g}"] = {"method": "colocam", "coloc_weight": lam}
        for name, over in variants.items():
            if args.only and name not in args.only:
                continue
            cfg = {
                "n_frames": 4,
                "epochs": args.epochs,
                "repeats_per_epoch": args.repeats,
                "seed": args.seed,
                "crf_step": args.crf_step,
                **over,
            }
            tag = name.split()[0].lower() + (
                f"-l{over['coloc_weight']:g}" if "coloc_weight" in over else ""
            )
            path = work / f"os{stride}-{tag}.pt"
            if args.report_only:
                if path.with_name(path.name + ".log.csv").is_file():
                    block["runs"][name] = summarise(path)
                continue
            t = time.perf_counter()
            train_stage2(
                clf,
                "yto-v1.0",
                data,
                path,
                config_overrides=cfg,
                cache_dir=work / f"cam_cache_os{stride}",
                device=device,
                progress=False,
                eval_split="val",
                eval_every=args.eval_every,
            )
            summary = summarise(path)
            summary["seconds"] = time.perf_counter() - t
            block["runs"][name] = summary
            last = summary["curve"][-1]["corloc"] if summary["curve"] else float("nan")
            print(f"os{stride} {name}: {summary['steps']} steps, val CorLoc {last:.1f}", flush=True)
    return {
        "dataset": args.dataset,
        "seed": args.seed,
        "settings": {k: v for k, v in vars(args).items() if k != "argv"},
        "command": "python benchmarks/bench_curves.py " + " ".join(args.argv),
        "device": device,
        "seconds": time.perf_counter() - t0,
        "versions": versions(),
        "results": out,
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Stage-2 curves on {report['dataset']} (seed {report['seed']})",
        "",
        f"Command: `{report['command']}`; device {report['device']}; "
        f"{report['seconds']:.0f} s. Val CorLoc (class-avg, delta 50, 250 thresholds) of the "
        "model in training, on the annotated frames of the training videos.",
        "",
    ]
    for stride, block in report["results"].items():
        lc = block["layercam_val"]
        lines += [
            f"## Output stride {stride[2:]} (classifier test accuracy "
            f"{block['classifier_test_accuracy']:.1f}%)",
            "",
            f"LayerCAM (the pseudo-labels' source) on the same frames: val CorLoc "
            f"{lc['corloc']:.1f}, mean IoU {lc['mean_iou']:.3f}.",
            "",
        ]
        steps = sorted({p["step"] for r in block["runs"].values() for p in r["curve"]})
        lines += [
            "| run | " + " | ".join(f"step {s}" for s in steps) + " |",
            "|---|" + "---:|" * len(steps),
        ]
        for name, r in block["runs"].items():
            by_step = {p["step"]: p["corloc"] for p in r["curve"]}
            cells = " | ".join(f"{by_step[s]:.1f}" if s in by_step else "" for s in steps)
            lines.append(f"| {name} ({r['steps']} steps logged) | {cells} |")
        lines += [
            "",
            "Loss terms, mean over the first / last 20% of steps: value, and the L2 norm of "
            "its gradient at the decoder's output logits (what pulls the head).",
            "",
            "| run | "
            + " | ".join(TERMS)
            + " | "
            + " | ".join(f"∇{t}" for t in TERMS)
            + " | ∇total | mean fg prob |",
            "|---|" + "---|" * (2 * len(TERMS) + 2),
        ]
        for name, r in block["runs"].items():
            t = r["terms"]

            def cell(col: str, t: dict[str, Any] = t) -> str:
                e, late = t[col]["early"], t[col]["late"]
                if e is None:
                    return "–"
                return f"{e:.3g} → {late:.3g}"

            cols = [*TERMS, *(f"grad_{x}" for x in TERMS), "grad_total", "fg_mean"]
            lines.append(f"| {name} | " + " | ".join(cell(c) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = report["results"]
    fig, axes = plt.subplots(1, len(blocks), figsize=(5.5 * len(blocks), 3.6), squeeze=False)
    for ax, (stride, block) in zip(axes[0], blocks.items()):
        for name, r in block["runs"].items():
            xs = [p["step"] for p in r["curve"]]
            ax.plot(xs, [p["corloc"] for p in r["curve"]], marker=".", label=name)
        ax.axhline(block["layercam_val"]["corloc"], color="grey", ls="--", label="LayerCAM")
        ax.set_title(f"{report['dataset']}, output stride {stride[2:]}")
        ax.set_xlabel("stage-2 step")
        ax.set_ylabel("val CorLoc (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--dataset", default="synthyto", choices=["synthyto", "synthyto-adversarial", "realyto"]
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-stride", type=int, nargs="+", default=[32], choices=[8, 16, 32])
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.25, 1.0, 4.0])
    p.add_argument("--only", nargs="*", help="run only these variant names")
    p.add_argument("--epochs", type=int, default=10, help="stage-2 epochs (paper: 10)")
    p.add_argument("--repeats", type=int, default=3, help="passes over the shots per epoch")
    p.add_argument("--eval-every", type=int, default=40)
    p.add_argument("--classifier-epochs", type=int, default=6)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--crf-step", type=float, default=0.5)
    p.add_argument("--work", default="runs/curves")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the report from the runs already in --work "
        "(an interrupted run is reported up to its last logged step)",
    )
    p.add_argument("--out", default=None, help="default: benchmarks/results/curves_<dataset>")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    report = run(args)
    base = Path(args.out or RESULTS / f"curves_{args.dataset}")
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_name(base.name + ".json").write_text(json.dumps(report, indent=2) + "\n")
    base.with_name(base.name + ".md").write_text(to_markdown(report))
    plot(report, base.with_name(base.name + ".png"))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
