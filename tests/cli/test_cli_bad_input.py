"""Every ``edgecl`` command against bad input: the right exit code (2 usage, 3 bundle,
4 budget, 5 export, 1 other), a one-line message, no traceback, nothing written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import devicehelpers
import numpy as np
import pytest

from edgecl.cli import EXIT_BUDGET, EXIT_BUNDLE, EXIT_OTHER, EXIT_USAGE, main


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder of good and bad inputs; returns ``{name: path}``."""
    h = devicehelpers
    d = tmp_path_factory.mktemp("bad")
    x, y = h.synthetic_stream(4, 30, seed=3)
    files = {"bundle": h.make_bundle(d / "good.ecl", x[y < 3], y[y < 3], ["a", "b", "c"])}
    np.save(d / "new.npy", x[y == 3])
    files["new"] = d / "new.npy"
    (d / "not_a_zip.ecl").write_bytes(b"this is not a zip file at all")
    files["not_zip"] = d / "not_a_zip.ecl"
    with zipfile.ZipFile(d / "other.ecl", "w") as z:
        z.writestr("hello.txt", "a zip of another kind")
    files["other_zip"] = d / "other.ecl"
    (d / "folder.ecl").mkdir()
    files["dir"] = d / "folder.ecl"
    files["missing"] = d / "missing.ecl"
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    files["garbage_npy"] = d / "garbage.npy"
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    files["object_npy"] = d / "objects.npy"
    np.save(d / "wrong_shape.npy", np.zeros((3, 5, 5), np.uint8))
    files["wrong_shape"] = d / "wrong_shape.npy"
    np.save(d / "nan.npy", np.full((2, 8, 8), np.nan, np.float32))
    files["nan_npy"] = d / "nan.npy"
    np.save(d / "strings.npy", np.array([["a"] * 8] * 8))
    files["str_npy"] = d / "strings.npy"
    (d / "notes.txt").write_text("not samples")
    files["txt"] = d / "notes.txt"
    (d / "empty_dir").mkdir()
    files["empty_dir"] = d / "empty_dir"
    files["out"] = d / "out.ecl"
    files["no_folder_out"] = d / "no" / "such" / "folder" / "out.ecl"
    return d, files


def _argv(template: list[str], files: dict[str, Path]) -> list[str]:
    return [str(files[a[1:]]) if a.startswith("@") else a for a in template]


BUNDLE_CASES = [("missing", EXIT_BUNDLE), ("dir", EXIT_BUNDLE), ("not_zip", EXIT_BUNDLE)]
BUNDLE_CASES += [("other_zip", EXIT_BUNDLE)]

CASES = [
    *[(["info", f"@{b}"], code) for b, code in BUNDLE_CASES],
    *[(["predict", f"@{b}", "--data", "@new"], code) for b, code in BUNDLE_CASES],
    *[
        (["learn", f"@{b}", "--class", "d", "--data", "@new", "-o", "@out"], c)
        for b, c in BUNDLE_CASES
    ],
    *[(["bench", "latency", f"@{b}", "--repeat", "1"], code) for b, code in BUNDLE_CASES],
    *[(["bench", "memory", f"@{b}"], code) for b, code in BUNDLE_CASES],
    *[(["compile", f"@{b}"], code) for b, code in BUNDLE_CASES],
    # --data files
    *[
        (["predict", "@bundle", "--data", f"@{data}"], EXIT_USAGE)
        for data in (
            "missing",
            "empty_dir",
            "garbage_npy",
            "object_npy",
            "wrong_shape",
            "nan_npy",
            "str_npy",
            "txt",
        )
    ],
    (["learn", "@bundle", "--class", "d", "--data", "@wrong_shape", "-o", "@out"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "d", "--data", "@missing", "-o", "@out"], EXIT_USAGE),
    (["bench", "memory", "@bundle", "--data", "@garbage_npy"], EXIT_USAGE),
    # class names
    (["learn", "@bundle", "--class", "", "--data", "@new", "-o", "@out"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "x\ny", "--data", "@new", "-o", "@out"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "x" * 10_000, "--data", "@new", "-o", "@out"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "a", "--data", "@new", "-o", "@out"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "z", "--update", "--data", "@new", "-o", "@out"], EXIT_USAGE),
    # where to write
    (["learn", "@bundle", "--class", "d", "--data", "@new"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@bundle"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@dir"], EXIT_USAGE),
    (["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@no_folder_out"], EXIT_USAGE),
    (
        ["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@out", "--in-place"],
        EXIT_USAGE,
    ),
    # sizes and numbers
    *[
        (["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@out", "--budget", s], c)
        for s, c in (("8k", EXIT_USAGE), ("-1", EXIT_USAGE), ("0", EXIT_USAGE), ("lots", 2))
    ],
    (["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@out", "--budget", "100"], 4),
    (["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@out", "--epochs", "0"], 2),
    (["predict", "@bundle", "--data", "@new", "--threads", "0"], EXIT_USAGE),
    (["bench", "latency", "@bundle", "--batch", "-3"], EXIT_USAGE),
    (["predict", "@bundle", "--data", "@new", "--labels", "@new"], EXIT_USAGE),
]


@pytest.mark.parametrize(
    "template,code",
    CASES,
    ids=lambda v: " ".join(v)[:60].replace("\n", "\\n") if isinstance(v, list) else str(v),
)
def test_bad_input_exit_code_one_line_nothing_written(world, capsys, template, code):
    d, files = world
    before = {p: p.read_bytes() if p.is_file() else None for p in d.rglob("*")}
    got = main([*_argv(template, files), "-q"])
    _, err = capsys.readouterr()
    assert got == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"edgecl {template[0]}"), err
    after = {p: p.read_bytes() if p.is_file() else None for p in d.rglob("*")}
    assert after == before  # nothing written, nothing changed


def test_budget_refusal_is_exit_4(world, capsys):
    _, files = world
    argv = _argv(["learn", "@bundle", "--class", "d", "--data", "@new", "-o", "@out"], files)
    assert main([*argv, "--budget", "100", "-q"]) == EXIT_BUDGET
    assert "BudgetError" in capsys.readouterr().err


def test_missing_checkpoint_is_exit_1(world, capsys):
    pytest.importorskip("torch")
    d, files = world
    assert main(["export", str(d / "none.pt"), "-o", str(files["out"]), "-q"]) == EXIT_OTHER
    assert "FileNotFoundError" in capsys.readouterr().err


HOST_CASES = [
    (["export", "@missing", "-o", "@out", "--data", "@new"], EXIT_USAGE),  # a file, not IDX
    (["export", "@missing", "-o", "@no_folder_out"], EXIT_USAGE),
    (["export", "@missing", "-o", "@dir"], EXIT_USAGE),
    (["export", "@missing", "-o", "@bundle"], EXIT_USAGE),  # exists, no --overwrite
    (["export", "@missing", "-o", "@out", "--budget", "8k"], EXIT_USAGE),
    (["export", "@missing", "-o", "@out", "--onnx", "@out"], EXIT_USAGE),
    (["train", "-o", "@out", "--classes", "3-1"], EXIT_USAGE),
    (["train", "-o", "@out", "--classes", "a,b"], EXIT_USAGE),
    (["train", "-o", "@bundle"], EXIT_USAGE),
    (["train", "-o", "@out", "--data", "@new"], EXIT_USAGE),
    (["demo", "-o", "@bundle"], EXIT_USAGE),  # a file, not a folder
    (["demo", "-o", "@empty_dir", "--data", "@new"], EXIT_USAGE),
    (["demo", "-o", "@empty_dir", "--checkpoint", "@missing"], EXIT_USAGE),
    (["demo", "-o", "@empty_dir", "--budget", "32M"], EXIT_USAGE),
]


@pytest.mark.parametrize(
    "template,code", HOST_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else str(v)
)
def test_host_commands_refuse_bad_input_before_any_work(world, capsys, template, code):
    pytest.importorskip("torch")
    d, files = world
    before = {p: p.read_bytes() if p.is_file() else None for p in d.rglob("*")}
    got = main([*_argv(template, files), "-q"])
    _, err = capsys.readouterr()
    assert got == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    after = {p: p.read_bytes() if p.is_file() else None for p in d.rglob("*")}
    assert after == before
