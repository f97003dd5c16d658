"""Built-in ``colocam`` sub-commands.

Each factory receives its ``argparse`` sub-parser, adds arguments and
returns ``run(args) -> int``. Heavy imports happen inside ``run``. The CLI
calls only the factory of the command being run (``colocam --help`` calls
none), so the training commands' factories may import their config defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from colocam_plugin import hookimpl
from colocam_plugin.cli.argtypes import (
    existing_file,
    output_file,
    positive_int,
)
from colocam_plugin.cli.common import (
    add_dataset_arguments,
    dataset_kwargs,
    require_frames,
    write_json,
)
from colocam_plugin.registry import Registry

Run = Callable[[argparse.Namespace], int]


def _methods(p: argparse.ArgumentParser) -> Run:
    p.add_argument("pattern", nargs="?", help="shell pattern, e.g. 'grad*'")

    def run(args: argparse.Namespace) -> int:
        from colocam_plugin.api import list_cam_methods

        for name in list_cam_methods(args.pattern):
            print(name)
        return 0

    return run


def _datasets(p: argparse.ArgumentParser) -> Run:
    def run(args: argparse.Namespace) -> int:
        from colocam_plugin.api import list_datasets

        for name in list_datasets():
            print(name)
        return 0

    return run


def _plugins(p: argparse.ArgumentParser) -> Run:
    def run(args: argparse.Namespace) -> int:
        from colocam_plugin.api import get_registries

        pm = get_registries().pm
        dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
        for name, plugin in sorted(pm.list_name_plugin(), key=lambda np_: str(np_[0])):
            if plugin is None:  # pluggy keeps blocked names with no plugin
                print(f"{name}\tblocked\t")
                continue
            dist = dists.get(id(plugin))
            where = f"{dist.project_name} {dist.version}" if dist else "colocam-plugin (built-in)"
            hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
            print(f"{name}\t{where}\t{','.join(hooks)}")
        return 0

    return run


def _score(p: argparse.ArgumentParser) -> Run:
    p.add_argument(
        "cams", metavar="CAMS.npz", type=existing_file, help="npz with cams, labels, boxes[, masks]"
    )
    p.add_argument(
        "--json", metavar="OUT", type=output_file, help="write the scores here (default: stdout)"
    )
    p.add_argument(
        "--thresholds", type=positive_int, default=1000, help="CAM thresholds (default 1000)"
    )

    def run(args: argparse.Namespace) -> int:
        from colocam_plugin.metrics.npz import score_npz

        scores = score_npz(args.cams, thresholds=args.thresholds)
        write_json(scores, args.json)
        return 0

    return run


def _data_info(p: argparse.ArgumentParser) -> Run:
    add_dataset_arguments(p, split="train")
    p.add_argument(
        "--json", metavar="OUT", type=output_file, help="write the counts here (default: stdout)"
    )
    p.add_argument(
        "--decode",
        action="store_true",
        help="decode every frame (slow); default: check each frame's end marker (truncation)",
    )

    def run(args: argparse.Namespace) -> int:
        from colocam_plugin.api import create_dataset
        from colocam_plugin.data.info import dataset_info, verify_frames

        ds = create_dataset(args.dataset, args.root, args.split, **dataset_kwargs(args))
        require_frames(ds, args)
        verify_frames(ds, decode=args.decode, skip_unreadable=args.skip_unreadable)
        write_json(dataset_info(ds), args.json)
        return 0

    return run


def _train_classifier(p: argparse.ArgumentParser) -> Run:
    from colocam_plugin.cli import run_train

    run_train.add_classifier_arguments(p)
    return run_train.run_classifier


def _train(p: argparse.ArgumentParser) -> Run:
    from colocam_plugin.cli import run_train

    run_train.add_train_arguments(p)
    return run_train.run_train


def _evaluate(p: argparse.ArgumentParser) -> Run:
    from colocam_plugin.cli import run_eval

    run_eval.add_arguments(p)
    return run_eval.run


def _localize(p: argparse.ArgumentParser) -> Run:
    from colocam_plugin.cli import run_localize

    run_localize.add_arguments(p)
    return run_localize.run


def _gallery(p: argparse.ArgumentParser) -> Run:
    from colocam_plugin.cli import run_gallery

    run_gallery.add_arguments(p)
    return run_gallery.run


def _demo(p: argparse.ArgumentParser) -> Run:
    from colocam_plugin.cli import demo

    demo.add_arguments(p)
    return demo.run


@hookimpl
def colocam_register_commands(registry: Registry[Run]) -> None:
    registry.add("methods", _methods, help="list registered CAM methods")
    registry.add("datasets", _datasets, help="list registered datasets")
    registry.add("plugins", _plugins, help="list plugins, their distribution and hooks")
    registry.add("score", _score, help="score saved CAMs (npz) from any tool")
    registry.add("data-info", _data_info, help="count videos, shots, frames, boxes")
    registry.add("train-classifier", _train_classifier, help="stage 1: train the classifier")
    registry.add("train", _train, help="stage 2: train a CoLo-CAM / F-CAM / TCAM localizer")
    registry.add("evaluate", _evaluate, help="score CAM methods and localizers side by side")
    registry.add("localize", _localize, help="boxes and heat maps on your own videos or frames")
    registry.add("gallery", _gallery, help="HTML page: CAM overlays of methods side by side")
    registry.add("demo", _demo, help="end to end on the synthetic dataset")
