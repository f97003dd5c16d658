"""colocam-plugin: CoLo-CAM and CAM baselines in one pluggy harness.

Front door::

    import colocam_plugin as cc
    cc.list_cam_methods("grad*")
    method = cc.create_cam_method("layercam")
    out = method(classifier, frames, targets)   # CAMOutput(cams, logits)
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: decorator for plugin hook implementations (``@hookimpl``)
hookimpl = pluggy.HookimplMarker("colocam")

from colocam_plugin.api import (  # noqa: E402  (hookimpl must exist first)
    create_cam_method,
    create_dataset,
    get_registries,
    list_cam_methods,
    list_datasets,
)
from colocam_plugin.plugins import get_plugin_manager  # noqa: E402

__all__ = [
    "__version__",
    "create_cam_method",
    "create_dataset",
    "get_plugin_manager",
    "get_registries",
    "hookimpl",
    "list_cam_methods",
    "list_datasets",
]
