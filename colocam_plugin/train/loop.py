"""The training loop both stages share: :func:`fit`, with a few callbacks.

A stage supplies its optimiser, its batches per epoch and its step (batch ->
loss and per-step metrics); :func:`fit` owns the rest, the same for both:
resuming from a :class:`Checkpoint` of the same config; per epoch,
``model.train()`` and the global RNG reseeded from ``epoch_seed(epoch)`` (per
rank), so a resumed epoch repeats bit for bit; per step, the model's forward
pass (DDP-wrapped in a process group, under the ``amp`` autocast), skipping
and counting a non-finite loss (on any rank), backward and optimiser step;
per epoch end, the scheduler step, rank 0's buffers to every rank, the
epoch's history row, its log line and the checkpoint; a progress bar.

Callbacks (:class:`Callback`: Lightning's names, fewer hooks) do the rest:
per-step CSV logs (:class:`CsvLogger`), periodic evaluation with a validation
CSV and the best weights (:class:`Evaluation`), the per-epoch checkpoint
(:class:`Checkpoint`), and anything small (:class:`LambdaCallback`). Hooks
run in list order; at an epoch's end the checkpoint runs after every other
callback, once their additions to the row are in the history.

Examples:
    >>> import torch
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> xs = [torch.ones(4, 2), torch.zeros(4, 2)]
    >>> def step(forward, x):
    ...     loss = forward(x).pow(2).mean()
    ...     return Step(loss, {"loss": float(loss.detach())})
    >>> state = fit(model, opt, epochs=2, batches=lambda epoch: xs, step=step,
    ...             epoch_seed=lambda epoch: epoch, progress=False)
    >>> [(row["epoch"], row["skipped_steps"]) for row in state.history]
    [(1, 0), (2, 0)]
    >>> state.global_step
    4
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn
from tqdm.auto import tqdm

from colocam_plugin import distributed
from colocam_plugin.atomic import atomic_write
from colocam_plugin.train.checkpoint import load_checkpoint, save_checkpoint
from colocam_plugin.train.checkpoint import resume as resume_run
from colocam_plugin.train.precision import autocast

__all__ = [
    "HOOKS",
    "Callback",
    "Checkpoint",
    "CsvLogger",
    "Evaluation",
    "FitState",
    "Forward",
    "LambdaCallback",
    "Step",
    "fit",
]

log = logging.getLogger("colocam_plugin.train")

B = TypeVar("B")

#: the model's forward pass as the step sees it: DDP-wrapped, under autocast
Forward = Callable[..., Any]


class Stateful(Protocol):
    """What a checkpoint saves and restores (a module, an optimiser, a scheduler)."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state_dict: Any, /) -> Any: ...


@dataclass
class Step:
    """What a step returns: the loss to minimise and its metrics.

    ``metrics`` (plain numbers) go to every callback's ``on_step_end`` and are
    summed over the epoch into :attr:`FitState.sums`. A skipped step's are
    dropped.
    """

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class FitState:
    """Where :func:`fit` stands; callbacks read it and may set ``should_stop`` or add to ``row``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    #: the stage's name, in the progress bar and the log (``stage1``, ``colocam``)
    name: str = "train"
    #: first epoch this call trains (0-based; from the checkpoint on resume)
    start_epoch: int = 0
    #: the epoch running, or the last one run (0-based; rows count from 1)
    epoch: int = 0
    #: optimiser steps since the run began (the history's ``steps`` on resume)
    global_step: int = 0
    #: optimiser steps and skipped (non-finite) steps in this epoch
    steps: int = 0
    skipped: int = 0
    #: each step metric summed over this epoch's steps
    sums: dict[str, float] = field(default_factory=dict)
    #: this epoch's history row, built at its end; ``on_epoch_end`` may add to it
    row: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: the last checkpoint written, or the finished one found on resume
    checkpoint: dict[str, Any] | None = None
    #: set by a callback: in ``on_step_end``, the loop leaves at once (the epoch
    #: unfinished and not checkpointed, as after a crash); in ``on_epoch_end``,
    #: after that epoch's checkpoint
    should_stop: bool = False

    @property
    def lr(self) -> float:
        """The first parameter group's learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])


#: the hooks of :class:`Callback`, in the order they first run
HOOKS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Hooks of :func:`fit`, in the order they run; each does nothing here.

    - ``on_fit_start``: after resuming (``start_epoch``, ``history`` set);
      not called when the checkpoint on disk is already complete;
    - ``on_epoch_start``: after reseeding and drawing the epoch's batches;
    - ``on_step_end``: after each optimiser step (never for a skipped step);
    - ``on_epoch_end``: after the scheduler step; ``state.row`` is the
      epoch's row, which a callback may add to before it is saved;
    - ``on_fit_end``: after the last epoch (or a stop), not after an error.
    """

    def on_fit_start(self, state: FitState) -> None:
        """Training is about to begin (or continue) at ``state.start_epoch``."""

    def on_epoch_start(self, state: FitState) -> None:
        """Epoch ``state.epoch`` is about to run."""

    def on_step_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        """Optimiser step ``state.global_step`` is done; ``metrics`` are the step's."""

    def on_epoch_end(self, state: FitState) -> None:
        """Epoch ``state.epoch`` is done; ``state.row`` holds its figures."""

    def on_fit_end(self, state: FitState) -> None:
        """Training has ended."""


class LambdaCallback(Callback):
    """A callback from plain functions, one per hook (Lightning's ``LambdaCallback``).

    Examples:
        >>> seen = []
        >>> cb = LambdaCallback(on_epoch_end=lambda state: seen.append(state.epoch))
        >>> LambdaCallback(on_batch_end=print)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: unknown hook 'on_batch_end'; hooks: on_fit_start, ...
    """

    def __init__(self, **hooks: Callable[..., None]) -> None:
        for hook, fn in hooks.items():
            if hook not in HOOKS:
                raise TypeError(f"unknown hook {hook!r}; hooks: {', '.join(HOOKS)}")
            setattr(self, hook, fn)


class Checkpoint(Callback):
    """The run's checkpoint: resumed from by :func:`fit`, rewritten after every epoch.

    The payload is ``{"kind", "config", **meta, **{key: obj.state_dict()},
    "epoch", "history"}``, written atomically by rank 0
    (:func:`~colocam_plugin.train.checkpoint.save_checkpoint`); every rank
    then waits at a barrier, so none runs ahead of the file on disk.

    Args:
        path: the checkpoint file.
        kind: ``"classifier"`` or ``"localizer"``; a file of another kind is refused.
        config: the run's identity: a file with another config is not resumed.
        states: checkpoint key -> object saved and restored, in payload order;
            ``"state_dict"`` is the model (the only state a finished run loads).
        meta: entries stored as they are, after ``config`` (``classes``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        kind: str,
        config: dict[str, Any],
        states: Mapping[str, Stateful],
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if "state_dict" not in states:
            raise ValueError("states: expected the model under 'state_dict'")
        self.path = Path(path)
        self.kind = kind
        self.config = config
        self.states = dict(states)
        self.meta = dict(meta or {})

    def resume(self, state: FitState) -> bool:
        """Load the file when it holds this config's run; True when that run is complete."""
        done, state.start_epoch, state.history = resume_run(
            self.path, kind=self.kind, config=self.config, epochs=state.epochs, states=self.states
        )
        state.checkpoint = done
        return done is not None

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """The model's weights alone, with this run's identity and ``extra`` (best weights)."""
        return {
            "kind": self.kind,
            "config": self.config,
            **self.meta,
            "state_dict": self.states["state_dict"].state_dict(),
            **extra,
        }

    def on_epoch_end(self, state: FitState) -> None:
        ckpt = {
            "kind": self.kind,
            "config": self.config,
            **self.meta,
            **{key: obj.state_dict() for key, obj in self.states.items()},
            "epoch": state.epoch + 1,
            "history": state.history,
        }
        if distributed.is_main():
            save_checkpoint(self.path, ckpt)
        distributed.barrier()  # no rank runs ahead of the checkpoint on disk
        state.checkpoint = ckpt


class CsvLogger(Callback):
    """One CSV row per optimiser step: ``epoch``, ``step``, ``lr`` and the step's metrics.

    Rank 0 appends each row as its step ends (the file is complete up to
    that step, which a TensorBoard mirror can follow); the other ranks write
    nothing. On resume the rows of the epochs being repeated are dropped.

    Args:
        path: the CSV file (its folder is created).
        columns: the header; a metric not in it is an error, a column with
            no value is left empty.
    """

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)

    def on_fit_start(self, state: FitState) -> None:
        if distributed.is_main():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a run killed mid-epoch left rows of the epoch it is about to repeat
            _truncate_csv(self.path, after_epoch=state.start_epoch)

    def on_epoch_start(self, state: FitState) -> None:
        if distributed.is_main():  # the header, even if no step of the epoch is finite
            with self.path.open("a", newline="") as fh:
                if fh.tell() == 0:
                    csv.DictWriter(fh, fieldnames=self.columns).writeheader()

    def on_step_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        if distributed.is_main():
            row = {"epoch": state.epoch + 1, "step": state.global_step, "lr": state.lr, **metrics}
            _append_csv(self.path, row, columns=self.columns)


class Evaluation(Callback):
    """Score the model every ``every`` steps and after the last one; keep the best weights.

    ``evaluate(model)`` runs with the model in eval mode, under no_grad, after
    every rank got rank 0's buffers; its scores (e.g. ``{"corloc": 51.2}``,
    the same on every rank) go to the CSV ``path`` with the epoch and step
    (rank 0). The last steps get a final evaluation unless ``every`` just
    scored them.

    With ``keep_best``, the weights with the highest ``select_metric`` so far
    go to ``best_path`` (a :meth:`Checkpoint.snapshot` with ``epoch``,
    ``step`` and ``val``); a resumed run starts from the best on disk. A fresh
    run (epoch 0) removes an old ``best_path`` and the old CSV rows whatever
    ``keep_best`` is, so no file outlives the run it came from.

    Args:
        evaluate: model -> scores, or None (nothing scored; the files are still reset).
        path: the validation CSV.
        every: steps between two evaluations (0: only at the end).
        best_path: the best-weights file.
        keep_best: write ``best_path``; needs ``checkpoint`` for the run's identity.
        checkpoint: the run's :class:`Checkpoint`.
        select_metric: the score that ranks the weights.
    """

    def __init__(
        self,
        evaluate: Callable[[Any], dict[str, float]] | None,
        path: str | Path,
        *,
        every: int = 0,
        best_path: str | Path | None = None,
        keep_best: bool = False,
        checkpoint: Checkpoint | None = None,
        select_metric: str = "corloc",
    ) -> None:
        self.evaluate = evaluate
        self.path = Path(path)
        self.every = every
        self.best_path = None if best_path is None else Path(best_path)
        #: whose identity the best weights carry and where they go (keep_best)
        self._keep: tuple[Checkpoint, Path] | None = None
        if keep_best:
            if checkpoint is None or self.best_path is None:
                raise ValueError("keep_best: needs best_path and the run's checkpoint")
            self._keep = (checkpoint, self.best_path)
        self.select_metric = select_metric
        self.best = -math.inf

    def on_fit_start(self, state: FitState) -> None:
        main = distributed.is_main()
        if main:
            _truncate_csv(self.path, after_epoch=state.start_epoch)
        self.best = -math.inf
        if self.best_path is None:
            return
        if state.start_epoch == 0:
            if main:
                self.best_path.unlink(missing_ok=True)
        elif self._keep is not None and self.best_path.is_file():
            ckpt = load_checkpoint(self.best_path, kind=self._keep[0].kind)
            self.best = float(ckpt["val"][self.select_metric])

    def on_step_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        if self.every > 0 and state.global_step % self.every == 0:
            self.run(state, epoch=state.epoch + 1)

    def on_fit_end(self, state: FitState) -> None:
        if state.start_epoch >= state.epochs:  # nothing was trained
            return
        if self.every <= 0 or state.global_step % self.every != 0:
            self.run(state, epoch=state.epoch + 1)

    def run(self, state: FitState, *, epoch: int) -> dict[str, float] | None:
        """Score the model now; returns the scores (None without ``evaluate``)."""
        if self.evaluate is None:
            return None
        model = state.model
        distributed.sync_buffers(model)  # every rank scores the same model (rank 0's)
        model.eval()
        with torch.no_grad():
            scores = self.evaluate(model)
        model.train()
        main = distributed.is_main()
        if main:
            _append_csv(self.path, {"epoch": epoch, "step": state.global_step, **scores})
            log.info("%s step %d val %s", state.name, state.global_step, scores)
        if self._keep is not None and scores[self.select_metric] > self.best:
            checkpoint, best_path = self._keep
            self.best = scores[self.select_metric]
            snapshot = checkpoint.snapshot(epoch=epoch, step=state.global_step, val=dict(scores))
            if main:
                save_checkpoint(best_path, snapshot)
        return scores


def _mean_metrics(state: FitState) -> dict[str, float]:
    """Default epoch figures: each step metric's mean over this rank's steps, and ``steps``."""
    return {**{k: v / max(1, state.steps) for k, v in state.sums.items()}, "steps": state.steps}


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    batches: Callable[[int], Iterable[B]],
    step: Callable[[Forward, B], Step],
    epoch_seed: Callable[[int], int],
    summarize: Callable[[FitState], dict[str, Any]] = _mean_metrics,
    scheduler: Any = None,
    checkpoint: Checkpoint | None = None,
    resume: bool = True,
    callbacks: Sequence[Callback] = (),
    amp: str = "none",
    device: str | torch.device = "cpu",
    progress: bool = True,
    name: str = "train",
) -> FitState:
    """Train ``model`` for ``epochs`` epochs; return the final :class:`FitState`.

    Args:
        model: the module trained (in place; already on ``device``).
        optimizer: its optimiser.
        epochs: the run's total epochs (a resumed run trains the rest).
        batches: epoch -> that epoch's batches on this rank, drawn after the
            global RNG was reseeded.
        step: ``(forward, batch) -> Step``: the loss (and metrics) of one
            batch; ``forward(*args)`` is the model's forward pass (DDP-wrapped
            in a process group, under the ``amp`` autocast).
        epoch_seed: epoch -> the seed of its global RNG (rank 0's; see
            :func:`~colocam_plugin.distributed.rank_seed`).
        summarize: the epoch's figures for its history row, from
            :attr:`FitState.sums` and ``steps`` (default: each metric's mean,
            and ``steps``). A resumed run counts its ``global_step`` from the
            history's ``steps``: report them if a callback needs it.
        scheduler: stepped after every epoch (e.g. ``StepLR``); saved only
            if ``checkpoint.states`` holds it.
        checkpoint: resumed from (when ``resume``) and written every epoch.
        callbacks: run in order at each hook (:class:`Callback`).
        amp: autocast mode of ``forward`` (:func:`~colocam_plugin.train.precision.autocast`).
        device: the device ``forward`` runs on (for autocast).
        progress: show a progress bar per epoch.
        name: the stage's name in the bar and the log.

    Returns:
        The state; ``state.checkpoint`` is the last checkpoint written, or the
        complete one found on disk (nothing trained), or None (no epoch run).
    """
    state = FitState(model=model, optimizer=optimizer, epochs=epochs, name=name)
    if checkpoint is not None and resume and checkpoint.resume(state):
        return state  # the run on disk is complete
    state.epoch = state.start_epoch
    state.global_step = sum(int(row.get("steps", 0)) for row in state.history)
    hooks = [*callbacks, *([checkpoint] if checkpoint is not None else [])]
    net = distributed.wrap_model(model)  # DistributedDataParallel in a process group

    def forward(*args: Any, **kwargs: Any) -> Any:
        with autocast(amp, device):
            return net(*args, **kwargs)

    for cb in hooks:
        cb.on_fit_start(state)
    for epoch in range(state.start_epoch, epochs):
        state.epoch = epoch
        model.train()
        # the global RNG (dropout, drop-path) restarts with the epoch too, so a
        # run resumed at this epoch repeats it bit for bit
        torch.manual_seed(distributed.rank_seed(epoch_seed(epoch)))
        epoch_batches = batches(epoch)
        state.steps, state.skipped, state.sums, state.row = 0, 0, {}, {}
        t0 = time.perf_counter()
        for cb in hooks:
            cb.on_epoch_start(state)
        with tqdm(
            epoch_batches,
            desc=f"{name} epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        ) as bar:
            for batch in bar:
                out = step(forward, batch)
                # the ranks skip together: one skipping the backward pass while
                # another runs it would leave the gradient all-reduce hanging
                if not distributed.all_finite(out.loss):
                    state.skipped += 1
                    optimizer.zero_grad(set_to_none=True)
                    continue
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                optimizer.step()
                state.steps += 1
                state.global_step += 1
                for key, value in out.metrics.items():
                    state.sums[key] = state.sums.get(key, 0) + value
                bar.set_postfix(loss=f"{float(out.loss.detach()):.3f}")
                for cb in hooks:
                    cb.on_step_end(state, out.metrics)
                if state.should_stop:
                    break
        if state.should_stop:  # stopped mid-epoch: not finished, not checkpointed
            break
        if scheduler is not None:
            scheduler.step()
        distributed.sync_buffers(model)  # every rank: the BatchNorm statistics rank 0 saves
        state.row = {
            "epoch": epoch + 1,
            **summarize(state),
            "skipped_steps": state.skipped,
            "seconds": time.perf_counter() - t0,
        }
        for cb in callbacks:
            cb.on_epoch_end(state)
        state.history.append(state.row)
        log.info("%s %s", name, " ".join(f"{k}={v:.4g}" for k, v in state.row.items()))
        if checkpoint is not None:
            checkpoint.on_epoch_end(state)
        if state.should_stop:
            break
    for cb in hooks:
        cb.on_fit_end(state)
    return state


def _truncate_csv(path: Path, *, after_epoch: int) -> None:
    """Drop the rows of ``path`` whose ``epoch`` is beyond ``after_epoch`` (0: all)."""
    if not path.is_file():
        return
    if after_epoch == 0:
        path.unlink()
        return
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        rows = [r for r in reader if int(float(r.get("epoch") or 0)) <= after_epoch]
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _append_csv(
    path: Path, row: Mapping[str, Any], *, columns: Sequence[str] | None = None
) -> None:
    """Append ``row`` to a CSV file; a new file gets the header ``columns`` (else its keys)."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns or row))
        if new:
            writer.writeheader()
        writer.writerow(row)
