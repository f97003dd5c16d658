from __future__ import annotations

import pytest
import torch

from colocam_plugin.errors import ColocamError
from colocam_plugin.train.cam_cache import temporal_max_cams
from colocam_plugin.train.checkpoint import load_checkpoint, save_checkpoint, state_fingerprint


def test_roundtrip_records_versions(tmp_path):
    path = save_checkpoint(
        tmp_path / "a" / "c.pt", {"kind": "classifier", "config": {"x": 1}, "state_dict": {}}
    )
    ckpt = load_checkpoint(path, kind="classifier")
    assert ckpt["config"] == {"x": 1}
    assert {"torch", "segmentation_models_pytorch", "kornia", "colocam_plugin"} <= set(
        ckpt["versions"]
    )
    assert not list(tmp_path.rglob("*.tmp"))


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ColocamError, match=r"missing\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    with pytest.raises(ColocamError, match=r"junk\.pt: not a readable checkpoint"):
        load_checkpoint(junk)
    other = save_checkpoint(
        tmp_path / "o.pt", {"kind": "localizer", "config": {}, "state_dict": {}}
    )
    with pytest.raises(ColocamError, match="expected a classifier checkpoint, got 'localizer'"):
        load_checkpoint(other, kind="classifier")
    torch.save({"a": 1}, tmp_path / "plain.pt")
    with pytest.raises(ColocamError, match="not a colocam checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_fingerprint_changes_with_weights():
    m = torch.nn.Linear(2, 2)
    a = state_fingerprint(m.state_dict())
    assert a == state_fingerprint(m.state_dict())
    with torch.no_grad():
        m.weight[0, 0] += 1e-3
    assert a != state_fingerprint(m.state_dict())


def test_temporal_max_stays_inside_shots():
    cams = torch.arange(6, dtype=torch.float32).view(6, 1, 1) % 3
    # two shots of 3 frames: values 0,1,2 | 0,1,2 reversed order inside shot 2
    cams[3:] = cams[3:].flip(0)
    out = temporal_max_cams(cams, [0, 0, 0, 1, 1, 1], k=2).flatten().tolist()
    assert out == [0.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    out1 = temporal_max_cams(cams, [0, 0, 0, 1, 1, 1], k=1).flatten().tolist()
    assert out1 == [0.0, 1.0, 2.0, 2.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="cams has 6 frames but shot_of has 2"):
        temporal_max_cams(cams, [0, 0], k=1)


def _run_state(epoch: int, weight: float) -> dict:
    m = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(weight)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    return {
        "kind": "classifier",
        "config": {"lr": 0.1},
        "state_dict": m.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "history": [{"epoch": epoch}],
    }


def test_resume_unfinished_finished_and_other_config(tmp_path):
    from colocam_plugin.train.checkpoint import resume

    path = tmp_path / "run.pt"
    model = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    states = {"state_dict": model, "optimizer": opt}
    assert resume(path, kind="classifier", config={"lr": 0.1}, epochs=2, states=states) == (
        None,
        0,
        [],
    )

    save_checkpoint(path, _run_state(epoch=1, weight=3.0))
    done, start, history = resume(
        path, kind="classifier", config={"lr": 0.1}, epochs=2, states=states
    )
    assert done is None and start == 1 and history == [{"epoch": 1}]
    assert model.weight.item() == 3.0

    save_checkpoint(path, _run_state(epoch=2, weight=5.0))
    done, start, _ = resume(path, kind="classifier", config={"lr": 0.1}, epochs=2, states=states)
    assert done is not None and done["epoch"] == 2 and start == 2
    assert model.weight.item() == 5.0

    other = resume(path, kind="classifier", config={"lr": 0.2}, epochs=2, states=states)
    assert other == (None, 0, [])
