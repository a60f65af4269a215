"""`edgecl export` and `edgecl info`: outputs, exit codes, no tracebacks, torch-free info."""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from edgecl import cli
from edgecl.bundle import LEARNING_GRAPHS, read_bundle
from edgecl.errors import ExportError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from edgecl.train import mnist_bnn, save_checkpoint

    torch.manual_seed(0)
    model = mnist_bnn(5, channels=(7, 13), n_bits=37).eval()
    path = tmp_path_factory.mktemp("ckpt") / "base.pt"
    save_checkpoint(model, path, class_names=[str(i) for i in range(5)])
    return path


@pytest.fixture(scope="module")
def bundle(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "m.ecl"
    args = ["export", str(checkpoint), "-o", str(out), "--components", "2", "--bits", "4"]
    assert cli.main([*args, "--calibration-samples", "150", "-q"]) == 0
    return out


def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_export_writes_a_bundle_and_an_onnx_graph(checkpoint, tmp_path, capsys):
    out, onnx_path = tmp_path / "m.ecl", tmp_path / "m.onnx"
    argv = ["export", str(checkpoint), "-o", str(out), "--onnx", str(onnx_path)]
    code, stdout, err = _run(
        [*argv, "--memory", "latent", "--per-class", "3", "--calibration-samples", "100"], capsys
    )
    assert code == 0, err
    manifest, _ = read_bundle(out)
    assert manifest["memory"]["kind"] == "buffer"
    assert manifest["classes"] == ["0", "1", "2", "3", "4"]
    assert onnx_path.stat().st_size > 0
    assert sorted(manifest["graphs"]) == sorted(LEARNING_GRAPHS)  # backend="onnxruntime"
    assert "conv2d_binary" in stdout and "stored" in stdout
    assert "calibration samples" in err  # progress on stderr


def test_export_refuses_existing_output(checkpoint, bundle, capsys):
    before = bundle.read_bytes()
    code, _, err = _run(["export", str(checkpoint), "-o", str(bundle), "-q"], capsys)
    assert code == cli.EXIT_USAGE and "--overwrite" in err
    assert bundle.read_bytes() == before


def test_info_table_and_json(bundle, capsys):
    code, out, _ = _run(["info", str(bundle)], capsys)
    assert code == 0
    assert "classes      5: 0, 1, 2, 3, 4" in out
    assert "dense_binary" in out and "class_memory" in out and "budget" in out
    code, out, _ = _run(["info", str(bundle), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    b = data["bundle"]
    assert b["classes"] == ["0", "1", "2", "3", "4"]
    assert b["stored_bytes"] == b["parts"]["class_memory"] + b["parts"]["head"]
    assert b["parts"]["head"] == (37 + 1) * 4 * 5
    assert [layer["weight_bits"] for layer in b["layers"]][:1] == [32]
    assert b["memory"]["kind"] == "gbm" and b["budget_bytes"] is None
    assert data["machine"]["cores"] >= 1 and "numpy" in data["machine"]["versions"]


def test_budget_headroom_and_strict_refusal(checkpoint, tmp_path, capsys):
    out = tmp_path / "b.ecl"
    base = ["export", str(checkpoint), "-o", str(out), "--calibration-samples", "150", "-q"]
    code, _, err = _run([*base, "--components", "2", "--bits", "4", "--budget", "900"], capsys)
    assert code == cli.EXIT_BUDGET, err
    assert "BudgetError" in err and "Traceback" not in err
    assert not out.exists()
    code, _, err = _run(
        [*base, "--components", "2", "--bits", "4", "--budget", "8KiB", "--json"], capsys
    )
    assert code == 0, err
    code, stdout, _ = _run(["info", str(out), "--json"], capsys)
    b = json.loads(stdout)["bundle"]
    assert b["budget_bytes"] == 8192 and b["policy"] == "strict"
    assert b["headroom_bytes"] == 8192 - b["stored_bytes"] > 0


def test_int8_head_shrinks_the_stored_bytes(checkpoint, tmp_path, capsys):
    stored = {}
    for bits in ("32", "8"):
        out = tmp_path / f"h{bits}.ecl"
        argv = ["export", str(checkpoint), "-o", str(out), "--calibration-samples", "150", "-q"]
        code, _, err = _run([*argv, "--head-bits", bits, "--gbm-weight", "0.1"], capsys)
        assert code == 0, err
        code, stdout, _ = _run(["info", str(out), "--json"], capsys)
        stored[bits] = json.loads(stdout)["bundle"]["parts"]["head"]
    assert stored["8"] < stored["32"] / 3


@pytest.mark.parametrize(
    "extra",
    [
        ["--head-bits", "4"],
        ["--gbm-weight", "-1"],
        ["--allow-differing-samples", "-1"],
        ["--memory", "gbm", "--per-class", "3"],
        ["--memory", "latent", "--components", "2"],
        ["--memory", "none", "--budget", "4KiB"],
        ["--budget", "lots"],
        ["--policy", "lenient"],
        ["--components", "0"],
        ["--calibration-samples", "0"],
    ],
)
def test_usage_errors_exit_2(checkpoint, tmp_path, capsys, extra):
    out = tmp_path / "u.ecl"
    code, _, err = _run(["export", str(checkpoint), "-o", str(out), "-q", *extra], capsys)
    assert code == cli.EXIT_USAGE, err
    assert "Traceback" not in err
    assert not out.exists()


def test_missing_arguments_and_unknown_command(capsys):
    assert cli.main(["export"]) == cli.EXIT_USAGE
    assert cli.main(["frobnicate"]) == cli.EXIT_USAGE
    assert cli.main([]) == cli.EXIT_USAGE
    assert cli.main(["--version"]) == 0
    capsys.readouterr()


def test_corrupt_bundle_exits_3_without_traceback(bundle, tmp_path, capsys):
    bad = tmp_path / "bad.ecl"
    bad.write_bytes(bundle.read_bytes()[:-50])
    code, out, err = _run(["info", str(bad)], capsys)
    assert code == cli.EXIT_BUNDLE
    assert "BundleError" in err and "Traceback" not in err and out == ""


def test_export_error_exits_5_and_debug_raises(checkpoint, tmp_path, capsys, monkeypatch):
    import edgecl.export

    def refuse(*args, **kwargs):
        raise ExportError("cannot export features.3 (ReLU)", module_path="features.3")

    monkeypatch.setattr(edgecl.export, "export_bundle", refuse)
    argv = ["export", str(checkpoint), "-o", str(tmp_path / "x.ecl"), "-q"]
    code, _, err = _run([*argv, "--calibration-samples", "20"], capsys)
    assert code == cli.EXIT_EXPORT and "features.3 (ReLU)" in err
    with pytest.raises(ExportError):
        cli.main([*argv, "--calibration-samples", "20", "--debug"])
    with pytest.raises(ExportError):
        cli.main(["--debug", *argv, "--calibration-samples", "20"])


def test_missing_checkpoint_exits_1(tmp_path, capsys):
    code, _, err = _run(
        ["export", str(tmp_path / "none.pt"), "-o", str(tmp_path / "x.ecl")], capsys
    )
    assert code == cli.EXIT_OTHER and "FileNotFoundError" in err


def _write_idx(path, arr):
    arr = np.ascontiguousarray(arr, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(header + arr.tobytes())


def test_calibration_from_an_idx_folder(checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "idx"
    data.mkdir()
    labels = np.array([7, 8, 0, 1, 2, 3, 4] * 6, np.uint8)
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    for split in ("train", "t10k"):
        _write_idx(data / f"{split}-images-idx3-ubyte", images)
        _write_idx(data / f"{split}-labels-idx1-ubyte", labels)
    out = tmp_path / "c.ecl"
    argv = ["export", str(checkpoint), "-o", str(out), "--calibration-data", str(data)]
    code, stdout, err = _run([*argv, "--memory", "latent", "--per-class", "2", "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["calibration"]["samples"] == 30  # classes 7 and 8 dropped
    # a data set without the checkpoint's classes is a usage error
    _write_idx(data / "train-labels-idx1-ubyte", np.full(len(labels), 9, np.uint8))
    code, _, err = _run([*argv, "--overwrite", "-q"], capsys)
    assert code == cli.EXIT_USAGE and "got none" in err


def test_parse_bytes():
    assert cli.parse_bytes("64KiB") == 65536
    assert cli.parse_bytes("8kB") == 8000
    assert cli.parse_bytes("5000") == 5000
    assert cli.parse_bytes("1.5MiB") == 1572864
    for bad in ("", "-3", "0", "12 parsecs"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_bytes(bad)


def test_parser_lists_every_command():
    parser = cli.build_parser()
    names = [c.name for c in cli.commands()]
    assert names[:2] == ["export", "info"]
    help_text = parser.format_help()
    assert all(n in help_text for n in names)


BLOCKED = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
from edgecl import cli
code = cli.main(["info", {path!r}, "--json"])
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
sys.exit(code)
"""


def test_cli_import_and_info_are_torch_free(bundle):
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED.format(path=str(bundle))], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bundle"]["classes"] == ["0", "1", "2", "3", "4"]
