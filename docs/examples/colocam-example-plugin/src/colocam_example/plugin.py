"""The module the ``colocam`` entry point names: one function per hook it implements.

Keep it light: ``colocam --help`` loads every plugin, so import torch (and
anything heavy) inside the factories, not here.
"""

from __future__ import annotations

from typing import Any

from colocam_plugin import hookimpl


def _centre_prior(**kwargs: Any) -> Any:
    from colocam_example.cams import CentrePrior

    return CentrePrior(**kwargs)


def _pointing_game(*, tolerance: int = 0, **context: Any) -> Any:
    """Create the metric; ``colocam evaluate`` calls this with its context.

    The context is ``thresholds`` and ``num_classes`` (more may come): take
    the keywords you use, let ``**context`` swallow the rest.
    """
    from colocam_example.metrics import PointingGame

    return PointingGame(tolerance=tolerance)


@hookimpl
def colocam_register_cam_methods(registry: Any) -> None:
    registry.add("centre-prior", _centre_prior, help="centre Gaussian, ignores the image")


@hookimpl
def colocam_register_metrics(registry: Any) -> None:
    registry.add("pointing-game", _pointing_game, help="CAM peak inside a GT box (%)")
