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
"""

from __future__ import annotations

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
