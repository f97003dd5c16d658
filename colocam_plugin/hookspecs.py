"""Hook specifications of the ``colocam`` plugin system (spec only).

A plugin is a module or object with functions decorated by
:data:`colocam_plugin.hookimpl` and named like the specs below. Built-in
components register through these same hooks. Third-party plugins are found
through the ``colocam`` entry-point group::

    [project.entry-points.colocam]
    myplugin = "my_package.colocam_plugin"

Every hook receives a typed :class:`~colocam_plugin.registry.Registry` and
calls ``registry.add(name, factory)``. Implementations may accept fewer
arguments than a spec declares (pluggy passes only the ones they name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from colocam_plugin.registry import Registry

__all__ = ["hookspec"]

hookspec = pluggy.HookspecMarker("colocam")


@hookspec
def colocam_register_cam_methods(registry: Registry[Any]) -> None:
    """Register CAM methods.

    ``registry.add(name, factory)``: ``factory(**kwargs)`` returns an object
    following :class:`colocam_plugin.cam.base.CAMMethod`: called as
    ``method(model, images, targets)`` it returns
    :class:`~colocam_plugin.cam.base.CAMOutput` with ``cams`` (B, H, W) in
    [0, 1] on the images' device and the classifier's ``logits``.
    """


@hookspec
def colocam_register_datasets(registry: Registry[Any]) -> None:
    """Register datasets.

    ``registry.add(name, factory)``: ``factory(root, split, **kwargs)``
    returns a :class:`colocam_plugin.data.records.VideoDataset` read from
    local disk only.
    """


@hookspec
def colocam_register_metrics(registry: Registry[Any]) -> None:
    """Register localization metrics.

    ``registry.add(name, factory)``: ``factory(**kwargs)`` returns a
    mergeable accumulator with ``update(cams, labels, boxes, ...)``,
    ``merge(other)`` and ``compute() -> dict`` (see
    :mod:`colocam_plugin.metrics`). The evaluation harness (``colocam
    evaluate``, :func:`colocam_plugin.harness.evaluate_methods`) computes
    every registered metric, one accumulator per CAM method:

    - **Context.** It calls ``factory(thresholds=T, num_classes=C)``: ``T``
      the number of CAM thresholds (1000 on test, 250 on validation), ``C``
      the number of classes (labels lie in ``[0, C)``). A factory takes the
      keywords it uses and accepts ``**kwargs`` for the others (more may be
      passed later).
    - **update**, once per batch and method, by keyword: the arguments it
      names out of ``cams`` (B, H, W) float32 CPU tensor, any range;
      ``labels`` (B,) int numpy; ``boxes``, B arrays (k, 4) ``x0, y0, x1,
      y1``, 0-based, inclusive, in the CAM's grid (k may be 0);
      ``pred_labels`` (B,) the classifier's top-1; ``masks`` (B, H, W) bool,
      passed only when every frame has a ground-truth mask (a metric whose
      ``update`` requires ``masks`` is otherwise not updated). With
      ``**kwargs`` it gets all of them. It must not modify them.
    - **compute()** returns a dict whose keys join each method's scores (the
      ``--json`` output; a number or None also gets a column of the printed
      table). A key that another metric, or the harness itself
      (``constant_cams``, ``mean_iou``, ``frame_accuracy``), reports too is
      an error naming both.
    - **Under torchrun**, each rank fills its own accumulators; they are
      gathered and pooled with ``merge(other)`` (adds ``other`` into
      ``self``) in rank order. An accumulator with ``dense_counts()`` (an
      int64 vector whose length is the same on every rank) and
      ``load_dense_counts(counts)`` is pooled by summing those counts in one
      all-reduce instead (as :class:`~colocam_plugin.metrics.BoxAccumulator`).
    """


@hookspec
def colocam_register_commands(registry: Registry[Any]) -> None:
    """Register ``colocam`` sub-commands.

    ``registry.add(name, factory, help=...)``: ``factory(parser)`` adds the
    command's arguments to an ``argparse`` sub-parser and returns the
    function ``run(args) -> int`` (the exit code).
    """


@hookspec
def colocam_register_heads(registry: Registry[Any]) -> None:
    """Register localization heads (decoders on the classifier's features).

    ``registry.add(name, factory)``: ``factory(encoder_channels, **kwargs)``
    returns an ``nn.Module`` mapping the encoder's feature list to logits
    (B, 2, H, W) at input resolution.
    """


@hookspec
def colocam_register_losses(registry: Registry[Any]) -> None:
    """Register colour / regularisation losses used by stage-2 training.

    ``registry.add(name, factory)``: ``factory(**kwargs)`` returns an
    ``nn.Module``.
    """


@hookspec
def colocam_register_samplers(registry: Registry[Any]) -> None:
    """Register frame-sequence samplers.

    ``registry.add(name, factory)``: ``factory(shots, n_frames, **kwargs)``
    returns an iterable of sequences of frame records (one shot each).
    """
