"""Leave the caller's model exactly as it was found.

pytorch-grad-cam calls ``model.eval()`` in its constructor and
``model.zero_grad()`` before its backward pass, which silently switches a
training model to eval mode and wipes the gradients of a training step.
:func:`preserved_model_state` snapshots what a CAM call may touch and puts it
back, even when the call raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["preserved_model_state"]


@contextmanager
def preserved_model_state(model: nn.Module) -> Iterator[None]:
    """Restore training flags, ``.grad`` and ``requires_grad`` on exit.

    On entry it records the ``training`` flag of every submodule (so a mix of
    train and eval submodules comes back as it was, not via a recursive
    ``model.train()``) and, for every parameter, its ``requires_grad`` flag
    and its ``.grad`` tensor, then sets every ``.grad`` to ``None``: the
    caller's gradient tensors are detached from the model during the block,
    so nothing in it (``zero_grad``, ``backward``) can change them in place.
    On exit (normal or exception) the same tensor objects are put back.

    Buffers (BatchNorm running statistics) are not snapshotted: run the model
    in eval mode inside the block (as every CAM method here does) so they are
    not updated.

    Args:
        model: any module; it is mutated inside the block only.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
        >>> net[0].weight.grad = torch.ones(2, 2)
        >>> with preserved_model_state(net):
        ...     _ = net.eval()
        ...     net.zero_grad()
        >>> net.training, net[1].training, net[0].weight.grad.sum().item()
        (True, True, 4.0)
    """
    modes = [(module, module.training) for module in model.modules()]
    params = [(p, p.grad, p.requires_grad) for p in model.parameters()]
    for p, _, _ in params:
        p.grad = None
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for p, grad, requires_grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad
