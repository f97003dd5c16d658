"""The ``colocam`` plugin: registers this package's CAM methods.

Found through the entry point ``[project.entry-points.colocam] gradcam =
"colocam_gradcam.plugin"``; it can also be registered by hand::

    pm.register(colocam_gradcam.plugin, name="gradcam")

Every ``colocam`` command loads the plugins, ``colocam --help`` included, so
this module imports neither torch nor pytorch-grad-cam: :data:`METHODS` names
each method's class as ``"module:Class"``, and the registered factory imports
it when the method is first created. (A test checks the table against the
classes.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from colocam_plugin import hookimpl
from colocam_plugin.registry import Registry

if TYPE_CHECKING:
    from colocam_gradcam.pipeline import CAMPipeline
    from colocam_plugin.cam.base import CAMMethod

__all__ = ["METHODS", "MethodSpec", "colocam_register_cam_methods"]


class MethodSpec(NamedTuple):
    """One CAM method of this plugin, named without importing it."""

    #: registry name, the class's ``name``
    name: str
    #: ``"module:Class"`` of the :class:`~colocam_gradcam.pipeline.CAMPipeline`
    target: str
    #: help line: the first line of the class docstring (name and paper link)
    help: str

    def load(self) -> type[CAMPipeline]:
        """Import and return the method's class (imports torch, pytorch-grad-cam)."""
        module, _, attr = self.target.partition(":")
        cls: type[CAMPipeline] = getattr(importlib.import_module(module), attr)
        return cls

    def factory(self) -> Callable[..., CAMMethod]:
        """The registry factory: ``factory(**kwargs)`` imports the class and creates one."""

        def create(**kwargs: Any) -> CAMMethod:
            from colocam_gradcam.pipeline import method_factory

            # a CAMPipeline is a CAMMethod, but mypy wants the protocol's `name`
            # as an instance variable and CAMPipeline's is a ClassVar (declaring
            # `name` a read-only property in colocam_plugin.cam.base would fix it)
            return cast("CAMMethod", method_factory(self.name, self.load())(**kwargs))

        create.__name__ = f"create_{self.name}"
        create.__doc__ = f"Create ``{self.target}``: {self.help}"
        return create


#: every method this plugin registers, in registration order
METHODS: tuple[MethodSpec, ...] = (
    MethodSpec(
        "cam",
        "colocam_gradcam.classic:ClassicCAM",
        "CAM, https://arxiv.org/abs/1512.04150: ``CAM_c = sum_k w_ck A_k``.",
    ),
    MethodSpec(
        "gradcam",
        "colocam_gradcam.gradcam:GradCAM",
        "Grad-CAM, https://arxiv.org/abs/1610.02391 (Selvaraju et al., ICCV 2017).",
    ),
    MethodSpec(
        "gradcampp",
        "colocam_gradcam.gradcam:GradCAMPlusPlus",
        "Grad-CAM++, https://arxiv.org/abs/1710.11063 (Chattopadhyay et al., WACV 2018).",
    ),
    MethodSpec(
        "xgradcam",
        "colocam_gradcam.gradcam:XGradCAM",
        "XGrad-CAM, https://arxiv.org/abs/2008.02312 (Fu et al., BMVC 2020).",
    ),
    MethodSpec(
        "layercam",
        "colocam_gradcam.gradcam:LayerCAM",
        "LayerCAM, https://doi.org/10.1109/TIP.2021.3089943 (Jiang et al., TIP 2021).",
    ),
    MethodSpec(
        "hirescam",
        "colocam_gradcam.gradcam:HiResCAM",
        "HiResCAM, https://arxiv.org/abs/2011.08891 (Draelos & Carin, 2020).",
    ),
    MethodSpec(
        "eigencam",
        "colocam_gradcam.gradcam:EigenCAM",
        "Eigen-CAM, https://arxiv.org/abs/2008.00299 (Muhammad & Yeasin, IJCNN 2020).",
    ),
    MethodSpec(
        "scorecam",
        "colocam_gradcam.gradcam:ScoreCAM",
        "Score-CAM, https://arxiv.org/abs/1910.01279 (Wang et al., CVPRW 2020).",
    ),
)


@hookimpl
def colocam_register_cam_methods(registry: Registry[CAMMethod]) -> None:
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
    for method in METHODS:
        registry.add(method.name, method.factory(), help=method.help)
