"""The shared fit loop: hook order, skipped steps, resume, stopping, metrics, CSV, evaluation."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from colocam_plugin.train.checkpoint import load_checkpoint
from colocam_plugin.train.loop import (
    Callback,
    Checkpoint,
    CsvLogger,
    Evaluation,
    FitState,
    LambdaCallback,
    Step,
    fit,
)

EPOCH_SEED = 1000


class _Killed(RuntimeError):
    pass


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1))


def _batches(epoch: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(epoch)
    return [torch.randn(5, 3, generator=gen) for _ in range(3)]


def _step(forward: Any, x: torch.Tensor) -> Step:
    loss = forward(x).pow(2).mean()  # dropout: the global RNG matters
    return Step(loss, {"loss": float(loss.detach()), "frames": len(x)})


def _run(
    tmp_path: Path,
    *,
    epochs: int = 3,
    step: Any = _step,
    callbacks: tuple[Callback, ...] = (),
    name: str = "run.pt",
    model: nn.Module | None = None,
) -> tuple[FitState, nn.Module]:
    model = model or _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    ckpt = Checkpoint(
        tmp_path / name,
        kind="toy",
        config={"epochs": epochs},
        states={"state_dict": model, "optimizer": opt, "scheduler": sched},
        meta={"classes": ["a"]},
    )
    state = fit(
        model,
        opt,
        epochs=epochs,
        batches=_batches,
        step=step,
        epoch_seed=lambda e: EPOCH_SEED + e,
        scheduler=sched,
        checkpoint=ckpt,
        callbacks=callbacks,
        progress=False,
        name="toy",
    )
    return state, model


class _Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_fit_start(self, state: FitState) -> None:
        self.calls.append(f"fit_start {state.start_epoch}")

    def on_epoch_start(self, state: FitState) -> None:
        self.calls.append(f"epoch_start {state.epoch}")

    def on_step_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        self.calls.append(f"step {state.global_step}")

    def on_epoch_end(self, state: FitState) -> None:
        # the checkpoint of this epoch is not written yet: it runs after the callbacks
        on_disk = state.checkpoint["epoch"] if state.checkpoint else 0
        self.calls.append(f"epoch_end {state.epoch} ckpt={on_disk}")

    def on_fit_end(self, state: FitState) -> None:
        self.calls.append("fit_end")


def test_hooks_run_in_order_and_the_checkpoint_last(tmp_path: Path) -> None:
    rec = _Recorder()
    state, _ = _run(tmp_path, epochs=2, callbacks=(rec,))
    assert rec.calls == [
        "fit_start 0",
        "epoch_start 0",
        "step 1",
        "step 2",
        "step 3",
        "epoch_end 0 ckpt=0",
        "epoch_start 1",
        "step 4",
        "step 5",
        "step 6",
        "epoch_end 1 ckpt=1",
        "fit_end",
    ]
    assert state.checkpoint is not None and state.checkpoint["epoch"] == 2
    ckpt = load_checkpoint(tmp_path / "run.pt", kind="toy")
    assert list(ckpt)[:7] == [
        "kind",
        "config",
        "classes",
        "state_dict",
        "optimizer",
        "scheduler",
        "epoch",
    ]
    assert [row["epoch"] for row in ckpt["history"]] == [1, 2]
    assert state.lr == pytest.approx(0.1 * 0.5**2)


def test_a_non_finite_step_is_skipped_counted_and_not_applied(tmp_path: Path) -> None:
    calls = {"n": 0}

    def nan_second(forward: Any, x: torch.Tensor) -> Step:
        calls["n"] += 1
        out = _step(forward, x)
        if calls["n"] == 2:
            out.loss = out.loss * float("nan")
        return out

    rec = _Recorder()
    state, model = _run(tmp_path, epochs=1, step=nan_second, callbacks=(rec,))
    row = state.history[0]
    assert row["skipped_steps"] == 1 and state.global_step == 2
    assert [c for c in rec.calls if c.startswith("step")] == ["step 1", "step 2"]
    assert state.sums["frames"] == 10  # the skipped step's metrics are dropped
    assert row["frames"] == 5.0  # default summary: the mean over the steps taken
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_epoch_rng_is_reseeded_per_epoch(tmp_path: Path) -> None:
    draws: list[float] = []

    def drawing(forward: Any, x: torch.Tensor) -> Step:
        draws.append(float(torch.rand(())))
        return _step(forward, x)

    _run(tmp_path, epochs=2, step=drawing)
    for epoch in range(2):
        torch.manual_seed(EPOCH_SEED + epoch)
        assert draws[3 * epoch] == float(torch.rand(()))


def test_resume_after_a_crash_is_bitwise_equal_and_a_finished_run_is_not_retrained(
    tmp_path: Path,
) -> None:
    ref, ref_model = _run(tmp_path, name="ref.pt")
    calls = {"n": 0}

    def dying(forward: Any, x: torch.Tensor) -> Step:
        calls["n"] += 1
        if calls["n"] == 5:  # second step of the second epoch
            raise _Killed
        return _step(forward, x)

    with pytest.raises(_Killed):
        _run(tmp_path, step=dying)
    assert torch.load(tmp_path / "run.pt", weights_only=False)["epoch"] == 1
    rec = _Recorder()
    state, model = _run(tmp_path, callbacks=(rec,))
    assert rec.calls[0] == "fit_start 1" and state.global_step == ref.global_step
    for key, value in ref_model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    drop = ("seconds",)
    strip = [{k: v for k, v in r.items() if k not in drop} for r in state.history]
    assert strip == [{k: v for k, v in r.items() if k not in drop} for r in ref.history]

    def never(forward: Any, x: torch.Tensor) -> Step:
        raise AssertionError("a finished run must not train")

    rec = _Recorder()
    done, again = _run(tmp_path, step=never, callbacks=(rec,))
    assert rec.calls == [] and done.checkpoint is not None and done.checkpoint["epoch"] == 3
    for key, value in ref_model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_a_callback_stops_training_mid_epoch_or_after_an_epoch(tmp_path: Path) -> None:
    def stop_at_step_2(state: FitState, metrics: Mapping[str, float]) -> None:
        state.should_stop = state.global_step == 2

    rec = _Recorder()
    state, _ = _run(
        tmp_path, callbacks=(LambdaCallback(on_step_end=stop_at_step_2), rec), name="a.pt"
    )
    assert rec.calls[-2:] == ["step 2", "fit_end"]  # no epoch end: not finished, not saved
    assert state.history == [] and not (tmp_path / "a.pt").exists()

    def stop_after_first(state: FitState) -> None:
        state.should_stop = True

    state, _ = _run(tmp_path, callbacks=(LambdaCallback(on_epoch_end=stop_after_first),))
    assert len(state.history) == 1
    assert load_checkpoint(tmp_path / "run.pt", kind="toy")["epoch"] == 1


def test_callbacks_see_step_metrics_and_add_to_the_epoch_row(tmp_path: Path) -> None:
    losses: list[float] = []

    def record(state: FitState, metrics: Mapping[str, float]) -> None:
        losses.append(metrics["loss"])

    def add_score(state: FitState) -> None:
        state.row["val_score"] = 10.0 * (state.epoch + 1)

    state, _ = _run(
        tmp_path,
        epochs=2,
        callbacks=(LambdaCallback(on_step_end=record, on_epoch_end=add_score),),
    )
    assert len(losses) == 6
    assert [r["val_score"] for r in state.history] == [10.0, 20.0]
    keys = ["epoch", "loss", "frames", "steps", "skipped_steps", "seconds", "val_score"]
    assert list(state.history[0]) == keys
    assert state.history[0]["loss"] == pytest.approx(sum(losses[:3]) / 3)
    saved = load_checkpoint(tmp_path / "run.pt", kind="toy")["history"]
    assert [r["val_score"] for r in saved] == [10.0, 20.0]


def test_forward_runs_under_autocast_and_the_loss_outside(tmp_path: Path) -> None:
    dtypes: list[torch.dtype] = []

    def step(forward: Any, x: torch.Tensor) -> Step:
        out = forward(x)
        dtypes.append(out.dtype)
        return Step(out.float().pow(2).mean())

    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(
        model,
        opt,
        epochs=1,
        batches=lambda e: [torch.randn(2, 3)],
        step=step,
        epoch_seed=lambda e: e,
        amp="bf16",
        progress=False,
    )
    assert dtypes == [torch.bfloat16]
    assert model.weight.dtype == torch.float32


def test_csv_log_and_evaluation_survive_a_resume(tmp_path: Path) -> None:
    """Rows of the repeated epoch are dropped; evaluations every 2 steps and at the end."""
    log_path, val_path = tmp_path / "run.log.csv", tmp_path / "run.val.csv"
    best_path = tmp_path / "run.best.pt"
    scores = iter(range(100))

    def evaluate(model: nn.Module) -> dict[str, float]:
        assert not model.training and not torch.is_grad_enabled()
        return {"corloc": float(next(scores))}

    def callbacks(ckpt: Checkpoint) -> tuple[Callback, ...]:
        return (
            CsvLogger(log_path, ["epoch", "step", "lr", "loss", "frames"]),
            Evaluation(
                evaluate,
                val_path,
                every=2,
                best_path=best_path,
                keep_best=True,
                checkpoint=ckpt,
            ),
        )

    def run(step: Any) -> FitState:
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        ckpt = Checkpoint(tmp_path / "run.pt", kind="toy", config={}, states={"state_dict": model})
        return fit(
            model,
            opt,
            epochs=3,
            batches=_batches,
            step=step,
            epoch_seed=lambda e: e,
            checkpoint=ckpt,
            callbacks=callbacks(ckpt),
            progress=False,
        )

    calls = {"n": 0}

    def dying(forward: Any, x: torch.Tensor) -> Step:
        calls["n"] += 1
        if calls["n"] == 6:  # last step of epoch 2
            raise _Killed
        return _step(forward, x)

    with pytest.raises(_Killed):
        run(dying)
    with log_path.open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2, 3, 4, 5]
    run(_step)
    with log_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 10))
    assert [int(r["epoch"]) for r in rows] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    with val_path.open() as fh:
        val = [(int(r["epoch"]), int(r["step"])) for r in csv.DictReader(fh)]
    assert val == [(1, 2), (2, 4), (2, 6), (3, 8), (3, 9)]  # epoch 2 rows dropped, then redone
    best = load_checkpoint(best_path, kind="toy")
    assert (best["step"], best["epoch"], best["val"]) == (9, 3, {"corloc": 5.0})
    assert "optimizer" not in best
