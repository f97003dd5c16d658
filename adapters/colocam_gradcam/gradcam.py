"""pytorch-grad-cam methods behind the :class:`CAMPipeline` contract.

pytorch-grad-cam (https://github.com/jacobgil/pytorch-grad-cam, MIT) works in
numpy, puts the model in eval mode, zeroes its gradients and registers hooks.
:class:`GradCAMFamily` builds one grad-cam object per call, releases its hooks
in a ``finally``, lets the pipeline's state guard restore the model, and
converts the numpy maps to a torch tensor at this boundary. Each method
subclass overrides one step: the grad-cam class it builds.

Gradient methods cut the autograd graph at ``model.target_layer`` (its output
becomes a fresh leaf that requires grad), so the backward pass only runs
through the head: it works with frozen parameters, with inputs that do not
require grad and under ``torch.no_grad()``, and never reaches the caller's
input tensor.
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar

import pytorch_grad_cam  # type: ignore[import-untyped]
import pytorch_grad_cam.score_cam  # type: ignore[import-untyped]
import torch
import tqdm  # type: ignore[import-untyped]
from pytorch_grad_cam.base_cam import BaseCAM  # type: ignore[import-untyped]
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # type: ignore[import-untyped]
from torch import nn

from colocam_gradcam.pipeline import CAMPipeline

__all__ = [
    "EigenCAM",
    "GradCAM",
    "GradCAMFamily",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "ScoreCAM",
    "XGradCAM",
]


def _leaf_output(_module: nn.Module, _args: Any, output: Any) -> Any:
    """Forward hook: the target layer's output as a new leaf requiring grad."""
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output.detach().requires_grad_(True)
    return None


class GradCAMFamily(CAMPipeline):
    """Base of the grad-cam adapters; subclasses set :attr:`gradcam_class`.

    Args:
        eigen_smooth: replace the weighted sum by its first principal
            component (grad-cam's ``eigen_smooth``; no effect for eigencam).
        aug_smooth: average over grad-cam's test-time augmentations
            (horizontal flip x 3 brightness factors: 6 passes). The logits
            are then from one extra no-grad forward pass of the plain images.
        reshape_transform: grad-cam's hook to turn a non-CNN target-layer
            output (e.g. ViT tokens) into ``(B, K, h, w)``.
    """

    #: the pytorch-grad-cam class this method wraps
    gradcam_class: ClassVar[type[BaseCAM]]

    def __init__(
        self,
        *,
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        for key, value in (("eigen_smooth", eigen_smooth), ("aug_smooth", aug_smooth)):
            if not isinstance(value, bool):
                raise TypeError(f"{self.name}: {key} must be a bool, got {value!r}")
        if reshape_transform is not None and not callable(reshape_transform):
            raise TypeError(f"{self.name}: reshape_transform must be callable or None")
        self.eigen_smooth = eigen_smooth
        self.aug_smooth = aug_smooth
        self.reshape_transform = reshape_transform

    def options(self) -> dict[str, Any]:
        return {"eigen_smooth": self.eigen_smooth, "aug_smooth": self.aug_smooth}

    def build(self, model: nn.Module, target_layer: nn.Module) -> BaseCAM:
        """Construct the grad-cam object (registers its hooks; calls model.eval())."""
        return self.gradcam_class(model, [target_layer], reshape_transform=self.reshape_transform)

    def running(self) -> Any:
        """Context around the grad-cam call (ScoreCAM silences its progress bars)."""
        return nullcontext()

    def compute_raw(
        self,
        model: nn.Module,
        target_layer: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits: torch.Tensor | None = None
        if self.aug_smooth:  # grad-cam's outputs are of the last augmentation
            with torch.no_grad():
                logits = model(images)
            if targets is None:
                targets = logits.argmax(dim=1).cpu()
        cam_targets = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
        cam: BaseCAM | None = None
        cut = None
        try:
            cam = self.build(model, target_layer)
            if cam.uses_gradients:
                cut = target_layer.register_forward_hook(_leaf_output, prepend=True)
            grad_mode = torch.enable_grad() if cam.uses_gradients else torch.no_grad()
            with grad_mode, self.running():
                maps = cam(
                    images,
                    cam_targets,
                    aug_smooth=self.aug_smooth,
                    eigen_smooth=self.eigen_smooth,
                )
            if logits is None:
                logits = cam.outputs.detach()
        finally:
            if cut is not None:
                cut.remove()
            if cam is not None:
                cam.activations_and_grads.release()
        return torch.from_numpy(maps).to(images.device, torch.float32), logits


class GradCAM(GradCAMFamily):
    """Grad-CAM, https://arxiv.org/abs/1610.02391 (Selvaraju et al., ICCV 2017).

    Channel weights: spatial mean of the gradient of the class score.

    Examples:
        >>> GradCAM(eigen_smooth=True)
        GradCAM(eigen_smooth=True, aug_smooth=False)
    """

    name = "gradcam"
    gradcam_class = pytorch_grad_cam.GradCAM


class GradCAMPlusPlus(GradCAMFamily):
    """Grad-CAM++, https://arxiv.org/abs/1710.11063 (Chattopadhyay et al., WACV 2018).

    Channel weights: positive gradients weighted by higher-order terms.
    """

    name = "gradcampp"
    gradcam_class = pytorch_grad_cam.GradCAMPlusPlus


class XGradCAM(GradCAMFamily):
    """XGrad-CAM, https://arxiv.org/abs/2008.02312 (Fu et al., BMVC 2020).

    Channel weights: gradients weighted by normalised activations.
    """

    name = "xgradcam"
    gradcam_class = pytorch_grad_cam.XGradCAM


class LayerCAM(GradCAMFamily):
    """LayerCAM, https://doi.org/10.1109/TIP.2021.3089943 (Jiang et al., TIP 2021).

    Per-location weights: ``ReLU(gradient) * activation``, summed over
    channels (the reference pseudo-label source of CoLo-CAM).
    """

    name = "layercam"
    gradcam_class = pytorch_grad_cam.LayerCAM


class HiResCAM(GradCAMFamily):
    """HiResCAM, https://arxiv.org/abs/2011.08891 (Draelos & Carin, 2020).

    Per-location weights: ``gradient * activation``, summed over channels.
    """

    name = "hirescam"
    gradcam_class = pytorch_grad_cam.HiResCAM


class EigenCAM(GradCAMFamily):
    """Eigen-CAM, https://arxiv.org/abs/2008.00299 (Muhammad & Yeasin, IJCNN 2020).

    First principal component of the activations; class-agnostic (targets
    are ignored) and gradient-free.
    """

    name = "eigencam"
    gradcam_class = pytorch_grad_cam.EigenCAM


_score_cam_lock = threading.Lock()


@contextmanager
def _quiet_score_cam() -> Iterator[None]:
    """Disable the tqdm bar grad-cam's ScoreCAM draws per image."""
    quiet = types.SimpleNamespace(tqdm=functools.partial(tqdm.tqdm, disable=True))
    with _score_cam_lock:
        module = pytorch_grad_cam.score_cam
        saved = module.tqdm
        module.tqdm = quiet  # type: ignore[assignment]
        try:
            yield
        finally:
            module.tqdm = saved


class ScoreCAM(GradCAMFamily):
    """Score-CAM, https://arxiv.org/abs/1910.01279 (Wang et al., CVPRW 2020).

    Channel weights: softmax over channels of the class score of the image
    masked by each upsampled, normalised activation map: ``K`` extra forward
    passes per image (minutes per batch on CPU for a 2048-channel map).

    Args:
        batch_size: masked images per forward pass (grad-cam's default 16).
        progress: show grad-cam's tqdm bars (off by default).
        eigen_smooth, aug_smooth, reshape_transform: as in
            :class:`GradCAMFamily`.
    """

    name = "scorecam"
    gradcam_class = pytorch_grad_cam.ScoreCAM

    def __init__(
        self,
        *,
        batch_size: int = 16,
        progress: bool = False,
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            eigen_smooth=eigen_smooth, aug_smooth=aug_smooth, reshape_transform=reshape_transform
        )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"scorecam: batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(progress, bool):
            raise TypeError(f"scorecam: progress must be a bool, got {progress!r}")
        self.batch_size = batch_size
        self.progress = progress

    def options(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, **super().options()}

    def build(self, model: nn.Module, target_layer: nn.Module) -> BaseCAM:
        cam = super().build(model, target_layer)
        cam.batch_size = self.batch_size  # read by ScoreCAM.get_cam_weights
        return cam

    def running(self) -> Any:
        return nullcontext() if self.progress else _quiet_score_cam()
