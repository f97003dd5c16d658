"""The ``colocam`` plugin: registers this package's CAM methods.

Found through the entry point ``[project.entry-points.colocam] gradcam =
"colocam_gradcam.plugin"``; it can also be registered by hand::

    pm.register(colocam_gradcam.plugin, name="gradcam")
"""

from __future__ import annotations

from typing import Any

from colocam_gradcam.classic import ClassicCAM
from colocam_gradcam.gradcam import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from colocam_gradcam.pipeline import CAMPipeline, method_factory
from colocam_plugin import hookimpl
from colocam_plugin.registry import Registry

__all__ = ["METHODS", "colocam_register_cam_methods"]

#: every method this plugin registers, in registration order
METHODS: tuple[type[CAMPipeline], ...] = (
    ClassicCAM,
    GradCAM,
    GradCAMPlusPlus,
    XGradCAM,
    LayerCAM,
    HiResCAM,
    EigenCAM,
    ScoreCAM,
)


def _help(cls: type[CAMPipeline]) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0]


@hookimpl
def colocam_register_cam_methods(registry: Registry[Any]) -> None:
    """Register ``cam``, ``gradcam``, ``gradcampp``, ``xgradcam``, ``layercam``,
    ``hirescam``, ``eigencam`` and ``scorecam``.

    Examples:
        >>> reg = Registry("CAM method")
        >>> colocam_register_cam_methods(reg)
        >>> reg.names("grad*")
        ['gradcam', 'gradcampp']
        >>> reg.create("scorecam", batch_size=8)
        ScoreCAM(batch_size=8, eigen_smooth=False, aug_smooth=False)
    """
    for cls in METHODS:
        registry.add(cls.name, method_factory(cls.name, cls), help=_help(cls))
