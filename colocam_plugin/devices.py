"""Device names on the command line: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

from __future__ import annotations

from colocam_plugin.errors import ColocamError

__all__ = ["resolve_device"]


def resolve_device(name: str, *, flag: str = "--device") -> str:
    """The torch device to use for ``name``; ``auto`` is CUDA when present, else CPU.

    Raises:
        ColocamError: naming ``flag`` when the device is unknown or absent
            (``cuda`` on a machine without a CUDA device).

    Examples:
        >>> resolve_device("cpu")
        'cpu'
        >>> resolve_device("tpu")
        Traceback (most recent call last):
        ...
        colocam_plugin.errors.ColocamError: --device tpu: expected auto, cpu, cuda or cuda:N
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ColocamError(f"{flag} {name}: no CUDA device is available here; use {flag} cpu")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ColocamError(
                f"{flag} {name}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
        return name
    raise ColocamError(f"{flag} {name}: expected auto, cpu, cuda or cuda:N")
