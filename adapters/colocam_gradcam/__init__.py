"""colocam-gradcam: pytorch-grad-cam baselines (and classic CAM) for colocam-plugin.

Installing this distribution registers, through the ``colocam`` entry-point
group, the CAM methods ``cam``, ``gradcam``, ``gradcampp``, ``xgradcam``,
``layercam``, ``hirescam``, ``eigencam`` and ``scorecam``::

    import colocam_plugin as cc
    method = cc.create_cam_method("layercam")
    out = method(classifier, frames, targets)   # CAMOutput(cams, logits)

Every method restores the caller's model (training flags, ``.grad``,
``requires_grad``) and removes its hooks after each call; see
:class:`colocam_gradcam.pipeline.CAMPipeline`.

The names below are imported on first access: importing the package (which
loading the plugin does, for every ``colocam`` command) imports neither torch
nor pytorch-grad-cam.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from colocam_gradcam.classic import ClassicCAM
    from colocam_gradcam.gradcam import (
        EigenCAM,
        GradCAM,
        GradCAMFamily,
        GradCAMPlusPlus,
        HiResCAM,
        LayerCAM,
        ScoreCAM,
        XGradCAM,
    )
    from colocam_gradcam.guard import preserved_model_state
    from colocam_gradcam.pipeline import CAMPipeline, normalize_per_frame, upsample_maps

__version__ = "0.1.0"

__all__ = [
    "CAMPipeline",
    "ClassicCAM",
    "EigenCAM",
    "GradCAM",
    "GradCAMFamily",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "ScoreCAM",
    "XGradCAM",
    "__version__",
    "normalize_per_frame",
    "preserved_model_state",
    "upsample_maps",
]

#: public name -> the submodule defining it
_SOURCES = {
    "CAMPipeline": "pipeline",
    "ClassicCAM": "classic",
    "EigenCAM": "gradcam",
    "GradCAM": "gradcam",
    "GradCAMFamily": "gradcam",
    "GradCAMPlusPlus": "gradcam",
    "HiResCAM": "gradcam",
    "LayerCAM": "gradcam",
    "ScoreCAM": "gradcam",
    "XGradCAM": "gradcam",
    "normalize_per_frame": "pipeline",
    "preserved_model_state": "guard",
    "upsample_maps": "pipeline",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first access (PEP 562)."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})
