"""CoLo-CAM's stage-2 losses: pseudo-labels, CRF, size constraint, co-localisation.

Functional + ``nn.Module`` pairs (kornia style)::

    from colocam_plugin.losses import CoLocLoss, CRFLoss, SizeLoss, sample_pseudo_labels

The two dense Gaussian energies run on a bilateral grid
(:mod:`colocam_plugin.losses.bilateral_grid`); exact O(N^2) references for
validation are in :mod:`colocam_plugin.losses.dense`. See docs/losses.md.
"""

from __future__ import annotations

from colocam_plugin.losses.bilateral_grid import gaussian_grid_energy
from colocam_plugin.losses.coloc import COLOC_STEP, CoLocEnergy, CoLocLoss, coloc_energy, coloc_loss
from colocam_plugin.losses.crf import CRF_STEP, CRF_WEIGHT, CRFEnergy, CRFLoss, crf_energy, crf_loss
from colocam_plugin.losses.dense import dense_coloc_energy, dense_crf_energy, dense_gaussian_energy
from colocam_plugin.losses.pseudo_labels import (
    IGNORE_INDEX,
    largest_component,
    otsu_threshold,
    roi_boxes,
    sample_pseudo_labels,
)
from colocam_plugin.losses.size import SizeLoss, log_barrier, size_loss

__all__ = [
    "COLOC_STEP",
    "CRF_STEP",
    "CRF_WEIGHT",
    "IGNORE_INDEX",
    "CRFEnergy",
    "CRFLoss",
    "CoLocEnergy",
    "CoLocLoss",
    "SizeLoss",
    "coloc_energy",
    "coloc_loss",
    "crf_energy",
    "crf_loss",
    "dense_coloc_energy",
    "dense_crf_energy",
    "dense_gaussian_energy",
    "gaussian_grid_energy",
    "largest_component",
    "log_barrier",
    "otsu_threshold",
    "roi_boxes",
    "sample_pseudo_labels",
    "size_loss",
]
