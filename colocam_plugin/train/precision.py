"""Mixed precision for both training stages: which autocast dtype a device gets.

``amp`` is ``"bf16"``, ``"none"`` or ``"auto"``: bf16 on CUDA (when supported)
and on CPUs whose oneDNN has bf16 kernels (AVX-512-bf16 / AMX), else full
precision. Models run under autocast; losses and energies stay float32.
"""

from __future__ import annotations

import torch

__all__ = ["amp_dtype", "autocast"]


def amp_dtype(amp: str, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` mode on ``device`` (None: full precision).

    Examples:
        >>> amp_dtype("none", "cpu") is None
        True
        >>> amp_dtype("bf16", "cpu")
        torch.bfloat16
    """
    if amp == "none":
        return None
    if amp == "bf16":
        return torch.bfloat16
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if kind == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def autocast(amp: str, device: str | torch.device) -> torch.autocast:
    """``torch.autocast`` for the encoder and decoder under :attr:`Stage2Config.amp`."""
    dtype = amp_dtype(amp, device)
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=dtype or torch.float32, enabled=dtype is not None)
