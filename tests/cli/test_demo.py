"""``edgecl demo``: the quick smoke run by default; the full run on the sample is slow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgecl.testing import block_torch


def _demo(tmp_path, *extra: str, timeout: int = 600) -> dict:
    out = tmp_path / "demo"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgecl.cli",
            "demo",
            "-o",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert json.loads((tmp_path / "r.json").read_text()) == report
    return report | {"_stdout": r.stdout, "_out": out}


def _check_report(report: dict) -> None:
    for key in ("final_accuracy", "average_incremental_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    acc = report["accuracy_per_step"]
    assert len(acc) == 6 and all(0.0 <= a <= 1.0 for a in acc)
    assert report["final_accuracy"] == pytest.approx(acc[-1])
    assert len(report["learn_class_ms"]) == 5 and all(t > 0 for t in report["learn_class_ms"])
    assert report["memory_bytes"] == report["stored_bytes"]
    assert report["stored_bytes"] == report["class_memory_bytes"] + report["head_bytes"]
    assert report["stored_bytes"] <= report["budget_bytes"]
    assert report["predict_latency_us_p50"] > 0
    assert report["device"]["torch_imported"] is False
    assert report["seed"] == 0 and report["dataset"]
    from edgecl.device import Runtime

    rt = Runtime.load(report["bundle_path"])
    assert list(rt.classes_) == [str(c) for c in range(10)]
    assert rt.memory().stored_bytes == report["stored_bytes"]
    # the learned bundle carries the learning graphs: onnxruntime alone predicts the same
    ort = Runtime.load(report["bundle_path"], backend="onnxruntime")
    assert list(ort.classes_) == list(rt.classes_)
    assert ort.memory().stored_bytes == report["stored_bytes"]


def test_quick_demo(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    report = _demo(tmp_path, "--quick", "--plot", str(tmp_path / "p.png"))
    _check_report(report)
    assert (tmp_path / "p.png").stat().st_size > 1000
    out = report["_out"]
    assert {"base.pt", "base.ecl", "model.ecl", "report.json"} <= {p.name for p in out.iterdir()}
    for c in "56789":
        assert f"\n   {'56789'.index(c) + 1}     {c} " in report["_stdout"]


def test_block_torch_refuses_torch_in_a_fresh_interpreter():
    code = (
        "from edgecl.testing import block_torch\n"
        "block_torch()\n"
        "try:\n"
        "    import torch\n"
        "except ImportError as e:\n"
        "    print('blocked', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("blocked"), r.stderr
    assert callable(block_torch)


@pytest.mark.slow
def test_full_demo_on_the_shipped_sample(tmp_path):
    """Acceptance: the default demo on the shipped sample reaches >= 0.90 over 10 classes."""
    pytest.importorskip("torch")
    report = _demo(tmp_path, timeout=1800)
    _check_report(report)
    assert report["final_accuracy"] >= 0.90
    assert report["class_memory_bytes"] <= 8 * 1024


def test_one_report_file_only(tmp_path):
    from edgecl.cli import main

    code = main(
        ["demo", "--quick", "-o", str(tmp_path), "--json", "a.json", "--json-file", "b.json"]
    )
    assert code == 2
    assert not (tmp_path / "report.json").exists()
