"""Process groups for ``torchrun``: one process per device, several devices or machines.

``torchrun`` (or ``python -m torch.distributed.run``) starts ``WORLD_SIZE``
copies of a command and tells each its ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` through the environment. :func:`session`
reads them: with ``WORLD_SIZE > 1`` it joins the process group (``gloo`` for
a CPU device, ``nccl`` for a CUDA one, the same code otherwise), puts each
process on the device of its ``LOCAL_RANK`` and leaves the group on exit.
Without ``torchrun`` there is no process group and every helper here is a
no-op (``rank() == 0``, ``world_size() == 1``): single-process runs pay
nothing.

What is sharded, what is reduced (docs/distributed.md):

- stage 1 (:mod:`colocam_plugin.train.stage1`): each epoch's frame order is
  drawn the same on every rank and every global batch is cut in
  ``world_size`` equal slices; gradients are averaged by
  :class:`~torch.nn.parallel.DistributedDataParallel`;
- stage 2 (:mod:`colocam_plugin.train.stage2`): the sampler shards SHOTS, so
  a sequence never leaves its rank; gradients as in stage 1;
- evaluation (:mod:`colocam_plugin.harness`): batches of frames are dealt to
  the ranks without padding and the metric COUNTS are summed
  (:func:`all_reduce_sum`), never per-rank scores averaged.

Only rank 0 writes files (checkpoints, logs, scores); the others wait at a
:func:`barrier`.

Examples:
    >>> world_size(), rank(), is_main(), is_distributed()
    (1, 0, True, False)
    >>> shard(list(range(5)))  # one process: everything
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from colocam_plugin.errors import ColocamError

__all__ = [
    "all_finite",
    "all_gather_object",
    "all_reduce_sum",
    "barrier",
    "cleanup",
    "init",
    "is_distributed",
    "is_main",
    "launched_rank",
    "main_first",
    "rank",
    "rank_seed",
    "session",
    "shard",
    "sync_buffers",
    "world_size",
    "wrap_model",
]

log = logging.getLogger("colocam_plugin.distributed")

T = TypeVar("T")

#: minutes a rank waits for the others (rank 0 may compute pseudo-label CAMs
#: alone for a long while); ``COLOCAM_DIST_TIMEOUT_MIN`` overrides it
DEFAULT_TIMEOUT_MIN = 120

_state: dict[str, Any] = {"owned": False, "comm_device": "cpu", "log_level": None}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ColocamError(f"environment variable {name}={value!r}: expected an integer") from None


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes in the group (1 without one)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a group)."""
    import torch.distributed as dist

    return dist.get_rank() if is_distributed() else 0


def launched_rank() -> int:
    """The rank ``torchrun`` gave this process (``RANK``; 0 when not launched by it).

    Known before the process group is set up, unlike :func:`rank`.
    """
    return _env_int("RANK", 0)


def is_main() -> bool:
    """True on rank 0, the process that writes files and prints."""
    return rank() == 0


def init(device: str = "cpu") -> str:
    """Join the process group ``torchrun`` describes; return this rank's device.

    With ``WORLD_SIZE`` unset or 1, or a group already initialised by the
    caller, nothing is created. Otherwise the backend is ``nccl`` for a CUDA
    ``device`` and ``gloo`` for anything else, and a CUDA device becomes
    ``cuda:LOCAL_RANK`` (one GPU per process).

    Args:
        device: the device resolved from ``--device`` (``cpu``, ``cuda``, ``cuda:N``).

    Returns:
        The device this process must use.

    Raises:
        ColocamError: a malformed ``torchrun`` variable, or a group that
            cannot be joined (the one-line reason).
    """
    import torch
    import torch.distributed as dist

    size = _env_int("WORLD_SIZE", 1)
    cuda = device.startswith("cuda")
    if dist.is_available() and dist.is_initialized():
        if cuda and dist.get_world_size() > 1:
            device = f"cuda:{_env_int('LOCAL_RANK', 0)}"
        _state["comm_device"] = device if dist.get_backend() == "nccl" else "cpu"
        return device
    if size <= 1:
        return device
    if not dist.is_available():
        raise ColocamError(f"WORLD_SIZE={size}, but this torch build has no torch.distributed")
    local = _env_int("LOCAL_RANK", 0)
    if cuda:
        if local >= torch.cuda.device_count():
            raise ColocamError(
                f"LOCAL_RANK {local}: only {torch.cuda.device_count()} CUDA device(s) here; "
                "start at most that many processes per node (--nproc_per_node)"
            )
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    backend = "nccl" if cuda else "gloo"
    minutes = _env_int("COLOCAM_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN)
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=minutes))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ColocamError(f"cannot join the torchrun process group ({backend}): {first}") from exc
    _state["owned"] = True
    _state["comm_device"] = device if cuda else "cpu"
    log.info("rank %d of %d on %s (%s)", dist.get_rank(), dist.get_world_size(), device, backend)
    if dist.get_rank() != 0:  # one copy of the progress log: rank 0's; warnings from all
        package = logging.getLogger("colocam_plugin")
        _state["log_level"] = package.level
        package.setLevel(max(logging.WARNING, package.getEffectiveLevel()))
    return device


def cleanup() -> None:
    """Leave the process group :func:`init` created (a caller's own group is left alone)."""
    import torch.distributed as dist

    if _state["owned"] and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    if _state["log_level"] is not None:
        logging.getLogger("colocam_plugin").setLevel(_state["log_level"])
        _state["log_level"] = None
    _state["owned"] = False
    _state["comm_device"] = "cpu"


@contextmanager
def session(device: str = "cpu") -> Iterator[str]:
    """``with session(device) as device:`` :func:`init`, then :func:`cleanup` on exit."""
    try:
        yield init(device)
    finally:
        cleanup()


def barrier() -> None:
    """Wait until every rank gets here (no-op in one process)."""
    import torch.distributed as dist

    if is_distributed():
        if dist.get_backend() == "nccl":
            import torch

            dist.barrier(device_ids=[torch.device(_state["comm_device"]).index or 0])
        else:
            dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. fills a cache); the others then run it.

    Rank 0 releases the others even when its block raises: they then run the
    block themselves and, the inputs being the same, meet the same error
    (a dataset without a test split, say) instead of waiting forever.

    Examples:
        >>> with main_first():
        ...     pass
    """
    if not is_main():
        barrier()
        yield
        return
    try:
        yield
    finally:
        barrier()


def all_reduce_sum(tensor: Any) -> Any:
    """Sum ``tensor`` over the ranks, in place, and return it (no-op in one process).

    The tensor may live on any device: it travels through the backend's device
    (the CPU for gloo, this rank's GPU for nccl) and comes back. Integer
    counts stay exact.

    Examples:
        >>> import torch
        >>> all_reduce_sum(torch.tensor([1, 2])).tolist()
        [1, 2]
    """
    if not is_distributed():
        return tensor
    import torch.distributed as dist

    comm = tensor.to(_state["comm_device"])
    dist.all_reduce(comm, op=dist.ReduceOp.SUM)
    if comm is not tensor:
        tensor.copy_(comm)
    return tensor


def sync_buffers(module: Any) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    ``DistributedDataParallel`` broadcasts them before each forward pass, but
    the last forward of an epoch updates them from each rank's own batch;
    called before a checkpoint, this leaves every rank with exactly the state
    rank 0 writes. A no-op in one process.
    """
    if not is_distributed():
        return
    import torch.distributed as dist

    for buf in module.buffers():
        comm = buf.to(_state["comm_device"])
        dist.broadcast(comm, src=0)
        if comm is not buf:
            buf.copy_(comm)


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), in rank order (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(items: Sequence[T]) -> list[T]:
    """This rank's share of ``items``: every ``world_size``-th, starting at ``rank``.

    No padding: the shares differ in length by at most one and together hold
    each item once (what evaluation needs: a repeated frame would count twice).
    """
    return list(items[rank() :: world_size()])


def rank_seed(seed: int) -> int:
    """``seed`` on rank 0, a different seed on every other rank (augmentation draws).

    Rank 0 keeps ``seed`` so that a single-process run is unchanged.
    """
    return seed + rank() * 1_000_000_007


def wrap_model(model: Any) -> Any:
    """``DistributedDataParallel(model)`` inside a group, ``model`` itself otherwise.

    The model must already be on this rank's device; no ``device_ids`` are
    given, so the same call serves a CPU (gloo) and a GPU (nccl) model.
    """
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def all_finite(loss: Any) -> bool:
    """``loss`` is finite on this rank and, in a process group, on every rank.

    The ranks must agree to skip a step: a rank that skipped the backward
    pass while another ran it would leave the gradient all-reduce hanging.
    """
    import torch

    finite = bool(torch.isfinite(loss))
    if not is_distributed():
        return finite
    bad = torch.tensor([0 if finite else 1], dtype=torch.int64)
    return int(all_reduce_sum(bad)[0]) == 0
