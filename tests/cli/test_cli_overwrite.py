"""One overwrite rule for every command that writes: a new path is fine; replacing an
existing file (the input bundle included) needs --overwrite (learn: --in-place)."""

from __future__ import annotations

import devicehelpers
import numpy as np
import pytest

from edgecl.cli import EXIT_OK, EXIT_USAGE, main


@pytest.fixture
def files(tmp_path):
    h = devicehelpers
    x, y = h.synthetic_stream(4, 30, seed=5)
    base = h.make_bundle(tmp_path / "base.ecl", x[y < 3], y[y < 3], ["a", "b", "c"])
    np.save(tmp_path / "new.npy", x[y == 3])
    return tmp_path, base


def test_learn_writes_a_new_path_and_refuses_an_existing_one(files, capsys):
    d, base = files
    out = d / "out.ecl"
    learn = ["learn", str(base), "--class", "d", "--data", str(d / "new.npy"), "-q"]
    assert main([*learn, "-o", str(out)]) == EXIT_OK
    first = out.read_bytes()
    capsys.readouterr()
    assert main([*learn, "-o", str(out), "--seed", "3"]) == EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == first
    assert main([*learn, "-o", str(out), "--seed", "3", "--overwrite"]) == EXIT_OK
    before = base.read_bytes()
    assert main([*learn, "-o", str(base)]) == EXIT_USAGE  # the input is a file like any other
    assert main(learn) == EXIT_USAGE  # never in place by default
    assert "--in-place" in capsys.readouterr().err
    assert base.read_bytes() == before
    assert main([*learn, "--in-place"]) == EXIT_OK
    assert base.read_bytes() != before


def test_demo_refuses_to_replace_an_earlier_run(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.json").write_text("{}")
    assert main(["demo", "--quick", "-o", str(out), "-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--overwrite" in err and "report.json" in err
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_train_refuses_an_existing_checkpoint(tmp_path, capsys):
    pytest.importorskip("torch")
    ckpt = tmp_path / "base.pt"
    ckpt.write_bytes(b"old")
    assert main(["train", "-o", str(ckpt), "-q"]) == EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err and ckpt.read_bytes() == b"old"
