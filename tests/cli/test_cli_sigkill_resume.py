"""SIGKILL in the middle of an epoch, then the same command again: bitwise-equal weights.

The whole command in a subprocess, killed with SIGKILL (no cleanup runs)
once the log shows steps of epoch 2, for stage 1 and stage 2. Running the
same command again resumes from the last checkpoint; its final weights must
equal, tensor for tensor, those of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto

pytestmark = pytest.mark.slow

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _cmd(*argv: object) -> list[str]:
    return [sys.executable, "-m", "colocam_plugin", *map(str, argv)]


def _kill_when(cmd: list[str], ready: Callable[[], bool], timeout: float = 600) -> None:
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"finished before it could be killed: {' '.join(cmd)}")
            if time.monotonic() - start > timeout:
                pytest.fail("timed out waiting for the kill point")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def _epoch(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])
    except Exception:  # not written yet, or being replaced
        return 0


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthyto(tmp_path_factory.mktemp("d"), SynthYTOConfig.tiny())


def test_stage1_and_stage2_sigkill_then_rerun_equals_uninterrupted(
    data: Path, tmp_path: Path
) -> None:
    common = ["--dataset", "yto-v1.0", "--root", data, "--no-progress", "--device", "cpu"]
    clf = [
        "train-classifier", *common, "--encoder", "resnet18", "--image-size", "64",
        "--epochs", "3", "--lr-step", "1", "--batch-size", "4", "--amp", "none",
    ]  # fmt: skip
    ref_clf, run_clf = tmp_path / "ref_clf.pt", tmp_path / "run_clf.pt"
    subprocess.run(_cmd(*clf, "--out", ref_clf), env=ENV, check=True)
    # killed once epoch 1's checkpoint exists, i.e. inside epoch 2
    _kill_when(_cmd(*clf, "--out", run_clf), lambda: _epoch(run_clf) >= 1)
    assert _epoch(run_clf) in (1, 2)
    subprocess.run(_cmd(*clf, "--out", run_clf), env=ENV, check=True)
    _assert_equal(_weights(ref_clf), _weights(run_clf))

    loc = [
        "train", *common, "--method", "colocam", "--classifier", ref_clf, "--epochs", "3",
        "--batch-frames", "4", "--n-frames", "2", "--crf-step", "0.5", "--amp", "none",
        "--tensorboard", "none", "--cache-dir", tmp_path / "cams",
    ]  # fmt: skip
    ref_loc, run_loc = tmp_path / "ref_loc.pt", tmp_path / "run_loc.pt"
    subprocess.run(_cmd(*loc, "--out", ref_loc), env=ENV, check=True)
    log = run_loc.with_name(run_loc.name + ".log.csv")

    def in_epoch_2() -> bool:
        return log.is_file() and "\n2," in log.read_text()

    _kill_when(_cmd(*loc, "--out", run_loc), in_epoch_2)
    assert _epoch(run_loc) == 1
    subprocess.run(_cmd(*loc, "--out", run_loc), env=ENV, check=True)
    _assert_equal(_weights(ref_loc), _weights(run_loc))
    ref_steps = ref_loc.with_name(ref_loc.name + ".log.csv").read_text().count("\n")
    assert log.read_text().count("\n") == ref_steps  # the repeated epoch is logged once
