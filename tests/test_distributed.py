"""Scale-out through ``torchrun`` on the CPU (gloo): same scores, same weights on every rank.

The end-to-end tests start ``python -m torch.distributed.run --nproc_per_node=2``
(``torchrun``) as a subprocess on a tiny SynthYTO tree; the unit tests check
the pieces in one process (no-op helpers, mergeable counts, batch slices).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from colocam_plugin import distributed
from colocam_plugin.errors import ColocamError, ShapeError
from colocam_plugin.metrics import BoxAccumulator

#: the seed whose tiny SynthYTO test split has an odd number of annotated frames
ODD_SEED = 1
COLOCAM = Path(sys.executable).with_name("colocam")

#: a test-only launcher: the real CLI, plus one file per rank with its world
#: size and the fingerprint of the weights it ends with
RECORDER = """\
import os
import sys
from pathlib import Path

import colocam_plugin.cli.run_train as run_train
from colocam_plugin import distributed
from colocam_plugin.cli.main import main
from colocam_plugin.train.checkpoint import state_fingerprint

OUT = Path(os.environ["COLOCAM_TEST_DIGESTS"])


def recording(train):
    def wrapped(*args, **kwargs):
        result = train(*args, **kwargs)
        ckpt = result[0] if isinstance(result, tuple) else result
        digest = state_fingerprint(ckpt["state_dict"])
        OUT.mkdir(exist_ok=True)
        rank_file = OUT / f"rank{distributed.rank()}"
        rank_file.write_text(f"{distributed.world_size()} {digest}")
        return result

    return wrapped


run_train.train_stage1 = recording(run_train.train_stage1)
run_train.train_stage2 = recording(run_train.train_stage2)
sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(*args: object, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``torchrun --nproc_per_node=2 ARGS`` on 127.0.0.1; return its output."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        *(str(a) for a in args),
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SynthYTO tree whose test split has an odd number of annotated frames."""
    from colocam_plugin.api import create_dataset
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto

    root = tmp_path_factory.mktemp("dist") / "data"
    generate_synthyto(root, SynthYTOConfig.tiny(seed=ODD_SEED))
    n_test = len(create_dataset("yto-v1.0", root, "test").frames)
    assert n_test % 2 == 1, f"the test split must have an odd frame count, has {n_test}"
    return root


@pytest.fixture(scope="module")
def tiny(tiny_data: Path) -> dict[str, Path]:
    """:func:`tiny_data` and a 1-epoch resnet18 classifier (no pretrained weights) on it."""
    from colocam_plugin.pipeline import train_stage1
    from colocam_plugin.train.config import Stage1Config

    d = tiny_data.parent
    cfg = Stage1Config(epochs=1, batch_size=8, image_size=64, resize=73)
    train_stage1("yto-v1.0", d / "data", d / "clf.pt", config=cfg, weights=None, progress=False)
    return {"dir": d, "data": d / "data", "clf": d / "clf.pt"}


# -- one process: the helpers are no-ops ------------------------------------------------------
def test_single_process_helpers_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "1")
    with distributed.session("cpu") as device:
        assert device == "cpu"
        assert (distributed.world_size(), distributed.rank()) == (1, 0)
        assert distributed.is_main() and not distributed.is_distributed()
        t = torch.tensor([3, 4])
        assert distributed.all_reduce_sum(t) is t and t.tolist() == [3, 4]
        assert distributed.all_gather_object({"a": 1}) == [{"a": 1}]
        assert distributed.shard([5, 6, 7]) == [5, 6, 7]
        assert distributed.rank_seed(42) == 42
        model = torch.nn.Linear(2, 2)
        assert distributed.wrap_model(model) is model
        with distributed.main_first():
            distributed.barrier()
    assert not torch.distributed.is_initialized()


def test_bad_torchrun_variable_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ColocamError, match="WORLD_SIZE='two'"):
        distributed.init("cpu")


def test_dense_counts_of_shards_sum_to_the_whole() -> None:
    rng = np.random.default_rng(0)
    n = 9  # odd: the shards differ in size
    cams = rng.random((n, 16, 16))
    labels = rng.integers(0, 3, n)
    boxes = [np.array([[1, 2, 9, 12]]) if i != 4 else np.zeros((0, 4)) for i in range(n)]
    pred = rng.integers(0, 3, n)
    whole = BoxAccumulator(thresholds=20, num_classes=3)
    whole.update(cams, labels, boxes, pred_labels=pred)
    shards = [BoxAccumulator(thresholds=20, num_classes=3) for _ in range(2)]
    for r, acc in enumerate(shards):
        idx = list(range(r, n, 2))
        acc.update(cams[idx], labels[idx], [boxes[i] for i in idx], pred_labels=pred[idx])
    merged = BoxAccumulator(thresholds=20, num_classes=3)
    merged.load_dense_counts(shards[0].dense_counts() + shards[1].dense_counts())
    assert merged.compute() == whole.compute()
    assert merged.num_frames_without_boxes == 1
    with pytest.raises(ShapeError, match="dense counts"):
        merged.load_dense_counts(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="num_classes"):
        BoxAccumulator(thresholds=20).dense_counts()


@pytest.mark.parametrize("n", [10, 11])
def test_stage1_ranks_split_every_global_batch(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    from colocam_plugin.train import stage1

    order = list(np.random.default_rng(n).permutation(n))
    single = stage1._rank_batches(order, 4)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    per_rank = []
    for r in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        per_rank.append(stage1._rank_batches(order, 4))
    assert len(per_rank[0]) == len(per_rank[1]) == len(single)  # same number of steps
    for k, (a, b) in enumerate(zip(*per_rank)):
        assert len(a) == len(b) > 0
        if k < len(single) - 1:  # the two halves of one process's batch
            assert a + b == single[k]
    seen = [i for part in per_rank for batch in part for i in batch]
    assert sorted(set(seen)) == list(range(n)) and len(seen) == n + n % 2  # wrapped pad


# -- two forked ranks (gloo), in the default suite ----------------------------------------------
def _forked_rank(rank: int, port: int, root: Path, out: Path) -> None:
    """One rank of a 2-process group: evaluate the test split, rank 0 writes the scores."""
    code = 1
    try:
        torch.set_num_threads(1)  # no OpenMP pool inherited across fork (as DataLoader workers)
        os.environ.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        with distributed.session("cpu"):
            scores = _evaluate_test_split(root)
            (out / f"rank{rank}.json").write_text(json.dumps(scores, sort_keys=True))
        code = 0
    except BaseException as exc:  # reported by the parent through the exit code
        (out / f"rank{rank}.error").write_text(repr(exc))
    finally:
        os._exit(code)


def _evaluate_test_split(root: Path) -> dict[str, object]:
    """Scores of the CAM method of a fixed untrained resnet18 on the test split (batch 2)."""
    from colocam_plugin.api import create_cam_method, create_dataset
    from colocam_plugin.harness import evaluate_methods
    from colocam_plugin.models.classifier import WGAPClassifier

    ds = create_dataset("yto-v1.0", root, "test")
    torch.manual_seed(0)
    model = WGAPClassifier("resnet18", len(ds.classes), weights=None).eval()
    res = evaluate_methods(
        model,
        ds.frames,
        {"cam": create_cam_method("cam")},
        num_classes=len(ds.classes),
        image_size=64,
        batch_size=2,
        progress=False,
    )
    return {
        "scores": res["cam"].scores,
        "labels": res["cam"].labels.tolist(),
        "boxes": [b.tolist() for b in res["cam"].boxes],
        "rank": distributed.rank(),
        "world": distributed.world_size(),
    }


@pytest.mark.skipif(
    not torch.distributed.is_gloo_available() or "fork" not in mp.get_all_start_methods(),
    reason="needs gloo and fork",
)
def test_two_ranks_pool_counts_to_the_single_process_scores(tiny_data, tmp_path):
    single = json.loads(json.dumps(_evaluate_test_split(tiny_data), sort_keys=True))
    port = _free_port()
    ctx = mp.get_context("fork")  # the children inherit the imported modules: no start-up
    procs = [ctx.Process(target=_forked_rank, args=(r, port, tiny_data, tmp_path)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    errors = {p.name: p.read_text() for p in tmp_path.glob("*.error")}
    assert [p.exitcode for p in procs] == [0, 0], errors
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(d["rank"], d["world"]) for d in ranks] == [(0, 2), (1, 2)]
    assert single["scores"]["num_frames"] == 11  # odd: the ranks hold 6 and 5 frames
    for d in ranks:  # every rank: the single-process scores, bit for bit
        assert d["scores"] == single["scores"]
        assert (d["labels"], d["boxes"]) == (single["labels"], single["boxes"])


# -- torchrun: two processes ------------------------------------------------------------------
@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs gloo")
@pytest.mark.slow
def test_torchrun_evaluate_writes_the_single_process_scores(tiny, tmp_path):
    from colocam_plugin.cli.main import main

    args = [
        "evaluate",
        "--dataset",
        "yto-v1.0",
        "--root",
        tiny["data"],
        "--classifier",
        tiny["clf"],
        "--methods",
        "cam,layercam",
        "--batch-size",
        "2",  # 11 frames: 6 batches, the last one frame; rank 0 gets 3, rank 1 gets 3
        "--device",
        "cpu",
        "--no-progress",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([str(a) for a in [*args, "--json", one / "s.json", "--save-cams", one]]) == 0
    launcher = ["--no-python", COLOCAM] if COLOCAM.is_file() else ["-m", "colocam_plugin"]
    out = _torchrun(*launcher, *args, "--json", two / "s.json", "--save-cams", two, cwd=tmp_path)
    assert "rank 1 of 2 on cpu (gloo)" in out  # it did run as two ranks
    single = (one / "s.json").read_text()
    assert json.loads(single)["cam"]["num_frames"] == 11
    assert (two / "s.json").read_text() == single  # the same bytes: pooled counts
    for name in ("cam", "layercam"):  # CAMs gathered back in frame order
        a, b = np.load(one / f"{name}.npz"), np.load(two / f"{name}.npz")
        for key in ("cams", "labels", "boxes"):
            np.testing.assert_array_equal(a[key], b[key])
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


def _check_digests(digests: Path, checkpoint: Path) -> None:
    """Both ranks ran in a group of 2 and end with the weights rank 0 wrote."""
    from colocam_plugin.train.checkpoint import state_fingerprint

    ranks = {p.name: p.read_text().split() for p in digests.iterdir()}
    assert set(ranks) == {"rank0", "rank1"}
    assert ranks["rank0"][0] == ranks["rank1"][0] == "2"
    assert ranks["rank0"][1] == ranks["rank1"][1]
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["config"]["world_size"] == 2
    assert state_fingerprint(ckpt["state_dict"]) == ranks["rank0"][1]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs gloo")
def test_torchrun_train_classifier_keeps_ranks_identical(tiny, tmp_path):
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    _torchrun(
        script,
        "train-classifier",
        "--dataset",
        "yto-v1.0",
        "--root",
        tiny["data"],
        "--encoder",
        "resnet18",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--image-size",
        "64",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        tmp_path / "clf2.pt",
        cwd=tmp_path,
        env={"COLOCAM_TEST_DIGESTS": str(tmp_path / "digests")},
    )
    _check_digests(tmp_path / "digests", tmp_path / "clf2.pt")


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs gloo")
def test_torchrun_train_keeps_ranks_identical(tiny, tmp_path):
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    classifier = shutil.copy(tiny["clf"], tmp_path / "clf.pt")
    _torchrun(
        script,
        "train",
        "--dataset",
        "yto-v1.0",
        "--root",
        tiny["data"],
        "--classifier",
        classifier,
        "--epochs",
        "2",
        "--batch-frames",
        "8",
        "--crf-step",
        "0.5",
        "--eval-split",
        "val",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        tmp_path / "loc.pt",
        cwd=tmp_path,
        env={"COLOCAM_TEST_DIGESTS": str(tmp_path / "digests")},
    )
    _check_digests(tmp_path / "digests", tmp_path / "loc.pt")
    # only rank 0 logged: a header and one row per step, 2 epochs of 2 steps (4 shots
    # sharded over 2 ranks, 1 sequence of each rank per step)
    rows = (tmp_path / "loc.pt.log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 2
    # one validation at the end, pooled over both ranks' frames
    assert len((tmp_path / "loc.pt.val.csv").read_text().strip().splitlines()) == 1 + 1
