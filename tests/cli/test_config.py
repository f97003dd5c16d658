"""``--config FILE.toml`` for every command, the resolved config beside ``--out``,
``--tensorboard`` (colocam_plugin/cli/config.py, wired in cli/main.py).

Commands' ``run`` functions are replaced by fakes: only parsing, the saved
config and the CSV -> TensorBoard glue are exercised, no training.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from colocam_plugin.cli import config as cli_config
from colocam_plugin.cli.main import build_parser, main, parse_args

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: namespace entries that are not options (the command's function, the config file itself)
NOT_OPTIONS = ("_run", "config")


@pytest.fixture
def clf(tmp_path: Path) -> Path:
    """A file standing for a classifier checkpoint (only its existence is checked)."""
    path = tmp_path / "clf.pt"
    path.write_bytes(b"checkpoint")
    return path


def _toml(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in NOT_OPTIONS}


def _one_error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_file_values_are_used_with_dashes_or_underscores(tmp_path: Path, clf: Path) -> None:
    cfg = _toml(
        tmp_path,
        f'dataset = "frames"\nroot = "{tmp_path}"\nclassifier = "{clf}"\nout = "{tmp_path}/o.pt"\n'
        'batch_frames = 8\nn-frames = 2\nterms = ["pl", "crf"]\nno-progress = true\n'
        'lr = 1e-3\nstyle = "random"\n',
    )
    _, args = parse_args(["train", "--config", str(cfg)])
    assert args.batch_frames == 8 and args.n_frames == 2
    assert args.terms == ("pl", "crf")  # through the flag's comma_names validator
    assert args.no_progress is True and args.lr == 0.001 and args.style == "random"
    _, plain = parse_args(
        ["train", "--dataset", "d", "--root", "r", "--classifier", str(clf), "--out", "o.pt"]
    )
    assert args.epochs == plain.epochs and args.seed == plain.seed  # the others: defaults


def test_flags_override_the_file(tmp_path: Path, clf: Path) -> None:
    cfg = _toml(
        tmp_path,
        f'dataset = "frames"\nroot = "{tmp_path}"\nclassifier = "{clf}"\nout = "o.pt"\n'
        "batch-frames = 8\nepochs = 3\nno-progress = false\n",
    )
    _, args = parse_args(["train", "--epochs", "5", "--config", str(cfg), "--no-progress"])
    assert args.epochs == 5 and args.no_progress is True  # flags win, wherever they stand
    assert args.batch_frames == 8  # the file's value where no flag is given
    _, args = parse_args(["train", f"--config={cfg}", "--out", "p.pt"])
    assert args.out == "p.pt" and args.epochs == 3


def test_table_per_command(tmp_path: Path, clf: Path) -> None:
    cfg = _toml(
        tmp_path,
        f'dataset = "frames"\nroot = "{tmp_path}"\nepochs = 2\n'
        f'[train-classifier]\nout = "c.pt"\nbatch-size = 4\n'
        f'[train]\nclassifier = "{clf}"\nout = "l.pt"\nepochs = 7\n',
    )
    _, stage1 = parse_args(["train-classifier", "--config", str(cfg)])
    _, stage2 = parse_args(["train", "--config", str(cfg)])
    assert (stage1.out, stage1.batch_size, stage1.epochs) == ("c.pt", 4, 2)  # top level
    assert (stage2.out, stage2.epochs, stage2.dataset) == ("l.pt", 7, "frames")  # table wins


def test_required_options_come_from_the_file(tmp_path: Path, clf: Path) -> None:
    cfg = _toml(tmp_path, f'dataset = "frames"\nroot = "r"\nclassifier = "{clf}"\n')
    _, args = parse_args(["train", "--config", str(cfg), "--out", "o.pt"])
    assert (args.dataset, args.root, args.classifier) == ("frames", "r", str(clf))
    with pytest.raises(SystemExit):  # still required without the file
        parse_args(["train", "--out", "o.pt", "--dataset", "frames", "--root", "r"])


def test_positional_and_exclusive_group_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the checkpoints named below must exist
    for name in ("c.pt", "l.pt"):
        (tmp_path / name).touch()
    cfg = _toml(
        tmp_path,
        'inputs = ["a.mp4", "b.mp4"]\nclassifier = "c.pt"\nlocalizer = "l.pt"\nout = "o"\n',
    )
    _, args = parse_args(["localize", "--config", str(cfg)])
    assert (args.inputs, args.localizer, args.method) == (["a.mp4", "b.mp4"], "l.pt", None)
    # the command line's INPUT and --method replace the file's inputs and localizer
    _, args = parse_args(["localize", "--config", str(cfg), "--method", "layercam", "x.mp4"])
    assert (args.inputs, args.localizer, args.method) == (["x.mp4"], None, "layercam")


def test_unknown_key_names_key_file_and_valid_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _toml(tmp_path, "[train]\nbatchframes = 8\n")
    line = _one_error_line(capsys, main(["train", "--config", str(cfg)]))
    assert line.startswith("colocam train: error:")
    assert "'batchframes'" in line and str(cfg) in line
    assert "valid keys:" in line and "batch-frames" in line and "n-frames" in line


@pytest.mark.parametrize(
    ("text", "key", "what"),
    [
        ("batch-frames = 0", "batch-frames", "expected an integer >= 1, got '0'"),
        ("batch_frames = 2.5", "batch_frames", "expected an integer >= 1, got '2.5'"),
        ('style = "sideways"', "style", "invalid choice: 'sideways'"),
        ("no-resume = 1", "no-resume", "expected true or false"),
        ('terms = ["pl", "nope"]', "terms", "unknown 'nope'"),
        ("lr = -1.0", "lr", "expected a finite number > 0"),
        ("seed = {a = 1}", "seed", "got a table"),
        ('classifier = "missing.pt"', "classifier", "missing.pt: no such file"),
    ],
)
def test_bad_value_is_one_line_naming_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, what: str
) -> None:
    cfg = _toml(tmp_path, f"[train]\n{text}\n")
    line = _one_error_line(capsys, main(["train", "--config", str(cfg)]))
    assert f"{cfg}: key {key!r}: " in line and what in line, line


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("batch-frames = ", "not valid TOML"),
        ("batch-frames = 2\nbatch_frames = 3", "are the same option"),
        ('localizer = "l.pt"\nmethod = "layercam"', "cannot be used together"),
    ],
)
def test_bad_file_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    what: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l.pt").touch()  # exists: the error is the exclusive pair, not the path
    cfg = _toml(tmp_path, text + "\n")
    line = _one_error_line(capsys, main(["localize", "--config", str(cfg)]))
    assert str(cfg) in line and what in line, line


def test_missing_config_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_error_line(capsys, main(["score", "x.npz", "--config", str(tmp_path / "no.toml")]))
    assert "argument --config:" in line and "no.toml: no such file" in line


@pytest.mark.parametrize(
    "command",
    ["train-classifier", "train", "evaluate", "demo", "localize", "gallery", "score", "data-info"],
)
def test_every_command_takes_config(command: str) -> None:
    parser = build_parser(command)
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert "--config" in sub._option_string_actions
    assert ("--tensorboard" in sub._option_string_actions) == (command == "train")


def _fake_run(calls: list[argparse.Namespace], *, folder: bool = False, fail: bool = False):
    """A command's ``run``: records its arguments, writes ``--out``, maybe fails after."""

    def run(args: argparse.Namespace) -> int:
        calls.append(args)
        out = Path(args.out)
        if folder:
            out.mkdir(parents=True, exist_ok=True)
            (out / "boxes.csv").write_text("video\n")
        else:
            out.write_bytes(b"checkpoint")
        if fail:
            raise KeyboardInterrupt
        return 0

    return run


def test_resolved_config_is_saved_beside_the_checkpoint_and_round_trips(
    tmp_path: Path, clf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colocam_plugin.cli import run_train

    calls: list[argparse.Namespace] = []
    monkeypatch.setattr(run_train, "run_train", _fake_run(calls))
    cfg = _toml(tmp_path, f'[train]\ndataset = "frames"\nroot = "{tmp_path}/r"\nepochs = 3\n')
    out = tmp_path / "loc.pt"
    argv = [
        "train",
        "--config",
        str(cfg),
        "--classifier",
        str(clf),
        "--out",
        str(out),
        "--terms",
        "pl,coloc",
        "--lr",
        "0.25",
        "--no-progress",
        "--tensorboard",
        "none",
    ]
    assert main(argv) == 0
    saved = tmp_path / "loc.pt.config.toml"
    data = tomllib.loads(saved.read_text())
    assert saved.read_text().startswith("# colocam train:")
    assert data["train"]["epochs"] == 3 and data["train"]["terms"] == ["pl", "coloc"]
    assert data["train"]["no-progress"] is True and "cache-dir" not in data["train"]  # None
    assert "config" not in data["train"]
    _, again = parse_args(["train", "--config", str(saved)])
    assert _options(again) == _options(calls[0])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_resolved_config_in_an_output_folder_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colocam_plugin.cli import run_localize

    calls: list[argparse.Namespace] = []
    monkeypatch.setattr(run_localize, "run", _fake_run(calls, folder=True))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.pt").touch()
    out = tmp_path / "boxes"
    argv = [
        "localize",
        "a b.mp4",
        'c"d.mp4',
        "--classifier",
        "c.pt",
        "--method",
        "layercam",
        "--out",
        str(out),
        "--class",
        "cat",
        "--temporal",
        "--absent-below",
        "0.3",
    ]
    assert main(argv) == 0
    saved = out / "config.toml"
    assert tomllib.loads(saved.read_text())["localize"]["class"] == "cat"
    _, again = parse_args(["localize", "--config", str(saved)])
    assert _options(again) == _options(calls[0])
    assert again.inputs == ["a b.mp4", 'c"d.mp4']


def test_config_saved_only_if_the_run_wrote_its_output(
    tmp_path: Path, clf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from colocam_plugin.cli import run_train

    base = [
        "train",
        "--dataset",
        "frames",
        "--root",
        "r",
        "--classifier",
        str(clf),
        "--tensorboard",
        "none",
    ]

    def refuse(args: argparse.Namespace) -> int:
        from colocam_plugin.errors import UsageError

        raise UsageError("refused before any work")

    monkeypatch.setattr(run_train, "run_train", refuse)
    assert main([*base, "--out", str(tmp_path / "a.pt")]) == 2
    assert not (tmp_path / "a.pt.config.toml").exists()
    monkeypatch.setattr(run_train, "run_train", _fake_run([], fail=True))  # interrupted
    assert main([*base, "--out", str(tmp_path / "b.pt")]) == 130
    assert (tmp_path / "b.pt.config.toml").is_file()  # a checkpoint to resume: keep its config


def test_commands_without_out_save_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _toml(tmp_path, "[methods]\npattern = 'grad*'\n")
    assert main(["methods", "--config", str(cfg)]) == 0
    names = capsys.readouterr().out.split()
    assert names and all(n.startswith("grad") for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]


@pytest.mark.parametrize(
    "value",
    ["plain", 'quote " and \\ backslash', "tab\tnew\nline\x7f\x01", "héllo ☃", "", "#[x] = 1"],
)
def test_dumps_toml_strings_round_trip(value: str) -> None:
    text = cli_config.dumps_toml("t", {"s": value, "odd key": [value]})
    assert tomllib.loads(text)["t"] == {"s": value, "odd key": [value]}


def test_dumps_toml_numbers_round_trip() -> None:
    values = {"a": 1e-9, "b": 3.0, "c": -7, "d": True, "e": math.inf, "f": [1, 2], "g": None}
    data = tomllib.loads(cli_config.dumps_toml("t", values))["t"]
    assert data == {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if v is not None
    }
    assert isinstance(data["b"], float) and isinstance(data["c"], int)


def test_config_directory_rule(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    dest = cli_config.config_destination
    assert dest(parser, argparse.Namespace(out="x.pt")) == Path("x.pt.config.toml")
    assert dest(parser, argparse.Namespace(out="runs/demo")) == Path("runs/demo/config.toml")
    assert dest(parser, argparse.Namespace(out=None)) is None


def test_tensorboard_mirrors_the_training_csv(
    tmp_path: Path, clf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from colocam_plugin.cli import run_train

    def run(args: argparse.Namespace) -> int:
        log = Path(args.out + ".log.csv")
        with log.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["epoch", "step", "loss", "coloc"])
            writer.writerows([[1, 1, 0.5, ""], [1, 2, 0.25, 0.1]])
        Path(args.out + ".val.csv").write_text("epoch,step,corloc\n1,2,40.0\n")
        Path(args.out).write_bytes(b"checkpoint")
        return 0

    monkeypatch.setattr(run_train, "run_train", run)
    out = tmp_path / "loc.pt"
    argv = [
        "train",
        "--dataset",
        "frames",
        "--root",
        "r",
        "--classifier",
        str(clf),
        "--out",
        str(out),
        "--tensorboard",
        str(tmp_path / "tb"),
    ]
    assert main(argv) == 0
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {
        "train/epoch",
        "train/loss",
        "train/coloc",
        "val/epoch",
        "val/corloc",
    }
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 0.5), (2, 0.25)]
    assert [e.step for e in acc.Scalars("train/coloc")] == [2]  # empty cell skipped
    assert tomllib.loads((tmp_path / "loc.pt.config.toml").read_text())["train"][
        "tensorboard"
    ] == str(tmp_path / "tb")


def test_tensorboard_dir_without_the_package_is_a_usage_error(
    tmp_path: Path, clf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_config.importlib.util, "find_spec", lambda name: None)
    argv = [
        "train",
        "--dataset",
        "frames",
        "--root",
        "r",
        "--classifier",
        str(clf),
        "--out",
        str(tmp_path / "o.pt"),
        "--tensorboard",
        str(tmp_path / "tb"),
    ]
    line = _one_error_line(capsys, main(argv))
    assert "--tensorboard" in line and "pip install tensorboard" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.pt"]
