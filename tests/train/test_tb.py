"""The CSV -> TensorBoard mirror (colocam_plugin/train/tb.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from colocam_plugin.train.tb import CsvMirror, mirror_csv_logs

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

HEADER = "epoch,step,lr,loss,pl,coloc,grad_total\n"


def _scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {
        tag: [(e.step, pytest.approx(e.value)) for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
    }


def test_rows_become_scalars_tagged_by_prefix_and_column(tmp_path: Path) -> None:
    log = tmp_path / "loc.pt.log.csv"
    log.write_text(HEADER + "1,1,0.001,0.9,0.8,,2.5\n1,2,0.001,0.7,0.6,0.05,1.5\n")
    val = tmp_path / "loc.pt.val.csv"
    val.write_text("epoch,step,corloc\n1,2,41.5\n")
    assert mirror_csv_logs(tmp_path / "tb", {"train": log, "val": val}) == 3
    scalars = _scalars(tmp_path / "tb")
    assert "train/step" not in scalars  # the x axis
    assert scalars["train/loss"] == [(1, 0.9), (2, 0.7)]
    assert scalars["train/coloc"] == [(2, 0.05)]  # the empty cell is skipped
    assert scalars["val/corloc"] == [(2, 41.5)]


def test_follows_appends_waits_for_whole_lines_and_restarts_on_rewrite(tmp_path: Path) -> None:
    log = tmp_path / "x.log.csv"
    mirror = CsvMirror(tmp_path / "tb", {"train": log})
    assert mirror.sync() == 0  # no file yet
    assert not (tmp_path / "tb").exists()  # nothing created before the first row
    log.write_text(HEADER + "1,1,0.1,1.0,1.0,,1\n")
    assert mirror.sync() == 1
    with log.open("a") as fh:
        fh.write("1,2,0.1,0.5")  # half a line
    assert mirror.sync() == 0
    with log.open("a") as fh:
        fh.write(",0.5,,1\n1,3,0.1,0.25,0.25,,1\n")
    assert mirror.sync() == 2
    tmp = log.with_name("new.csv")  # a resumed run rewrites the file (fewer rows)
    tmp.write_text(HEADER + "1,1,0.1,1.0,1.0,,1\n")
    tmp.replace(log)
    assert mirror.sync() == 1
    mirror.close()
    # the rewrite is a session restart: TensorBoard drops steps >= 1 written before it
    assert _scalars(tmp_path / "tb")["train/loss"] == [(1, 1.0)]


def test_a_new_mirror_replaces_the_steps_it_writes_again(tmp_path: Path) -> None:
    log = tmp_path / "x.log.csv"
    log.write_text(HEADER + "".join(f"1,{s},0.1,{s},1.0,,1\n" for s in (1, 2, 3)))
    mirror_csv_logs(tmp_path / "tb", {"train": log})
    time.sleep(1.1)  # event file names carry the second they were opened
    # a resumed run in a new process: epoch 1 repeated from step 2 with other losses
    log.write_text(HEADER + "1,1,0.1,1,1.0,,1\n1,2,0.1,20,1.0,,1\n")
    mirror_csv_logs(tmp_path / "tb", {"train": log})
    assert _scalars(tmp_path / "tb")["train/loss"] == [(1, 1.0), (2, 20.0)]


def test_background_thread_mirrors_while_the_block_runs(tmp_path: Path) -> None:
    log = tmp_path / "x.log.csv"
    with CsvMirror(tmp_path / "tb", {"train": log}, interval=0.05):
        log.write_text(HEADER + "1,1,0.1,1.0,1.0,,1\n")
        deadline = time.monotonic() + 20
        while not (tmp_path / "tb").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "tb").exists()  # written by the thread, before the block ends
        with log.open("a") as fh:
            fh.write("1,2,0.1,0.5,0.5,,1\n")
    assert [s for s, _ in _scalars(tmp_path / "tb")["train/loss"]] == [1, 2]  # last read on exit


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        CsvMirror(tmp_path, {}, interval=0)
