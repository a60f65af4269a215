"""The device CLI (learn, predict, info, bench) in fresh interpreters with torch blocked."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from devicehelpers import make_bundle, synthetic_stream

from edgecl.cli import EXIT_BUDGET, EXIT_BUNDLE, EXIT_OK, EXIT_USAGE

RUNNER = textwrap.dedent(
    """
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    from edgecl.cli import main

    code = main(sys.argv[1:])
    assert "torch" not in sys.modules
    sys.exit(code)
    """
)


def edgecl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    x, y = synthetic_stream(6, 40, seed=2)
    base = make_bundle(d / "base.ecl", x[y < 3], y[y < 3], ["a", "b", "c"], budget=6000)
    np.save(d / "new.npy", x[y == 3])
    np.save(d / "test.npy", x[y <= 3])
    np.save(d / "labels.npy", np.array(["a", "b", "c", "d"])[y[y <= 3]])
    return d, base


def test_learn_predict_info_bench_without_torch(files):
    d, base = files
    out = d / "learned.ecl"
    r = edgecl("learn", base, "--class", "d", "--data", d / "new.npy", "-o", out, "--seed", "1")
    assert r.returncode == EXIT_OK, r.stderr
    assert "learned class 'd'" in r.stdout and out.is_file()
    r = edgecl("predict", out, "--data", d / "test.npy", "--labels", d / "labels.npy", "--json")
    assert r.returncode == EXIT_OK, r.stderr
    res = json.loads(r.stdout)
    assert res["classes"] == ["a", "b", "c", "d"] and res["n_samples"] == 160
    assert res["accuracy"] > 0.85
    assert res["machine"]["cores"] >= 1 and res["machine"]["versions"]["numpy"]
    r = edgecl("info", out)
    assert r.returncode == EXIT_OK, r.stderr
    r = edgecl(
        "bench",
        "latency",
        out,
        "--data",
        d / "test.npy",
        "--repeat",
        "3",
        "--learn-repeat",
        "1",
        "--learn-samples",
        "20",
        "--json",
    )
    assert r.returncode == EXIT_OK, r.stderr
    res = json.loads(r.stdout)
    assert res["reference_check"]["embedding_bits_equal"] is True
    assert res["predict_us"]["n"] == 3 and res["learn_class_ms"]["n"] == 1
    r = edgecl("bench", "memory", out, "--data", d / "test.npy", "--json")
    assert r.returncode == EXIT_OK, r.stderr
    res = json.loads(r.stdout)
    mem = res["memory"]
    assert mem["stored_bytes"] == mem["class_memory_bytes"] + mem["head_bytes"]
    assert res["closed_form"]["bits"] == 4 * 2 * 96 * 4
    assert res["learn_class"]["peak_bytes"] > 0
    r = edgecl("bench", "memory", out, "--data", d / "test.npy")
    assert r.returncode == EXIT_OK and "closed form" in r.stdout


def test_update_in_place(files, tmp_path):
    d, base = files
    target = tmp_path / "b.ecl"
    target.write_bytes(base.read_bytes())
    before = target.read_bytes()
    r = edgecl("learn", target, "--class", "a", "--update", "--data", d / "new.npy")
    assert r.returncode == EXIT_USAGE and "--in-place" in r.stderr  # never in place by default
    assert target.read_bytes() == before
    r = edgecl("learn", target, "--class", "a", "--update", "--data", d / "new.npy", "--in-place")
    assert r.returncode == EXIT_OK, r.stderr
    assert "updated class 'a'" in r.stdout and target.read_bytes() != before


def test_exit_codes_and_no_traceback(files, tmp_path):
    d, base = files
    out = tmp_path / "out.ecl"
    r = edgecl("learn", base, "--class", "d", "--data", d / "new.npy", "--budget", "100", "-o", out)
    assert r.returncode == EXIT_BUDGET and not out.exists()
    assert "Traceback" not in r.stderr and "BudgetError" in r.stderr
    copy = tmp_path / "c.ecl"
    copy.write_bytes(base.read_bytes())
    before = copy.read_bytes()
    # the new class does not fit under a budget just above what is stored now
    r = edgecl(
        "learn", copy, "--class", "d", "--data", d / "new.npy", "--budget", "5000", "--in-place"
    )
    assert r.returncode in (EXIT_BUDGET, EXIT_OK), r.stderr
    if r.returncode == EXIT_BUDGET:
        assert copy.read_bytes() == before
    bad = tmp_path / "bad.ecl"
    bad.write_bytes(b"not a zip")
    r = edgecl("predict", bad, "--data", d / "test.npy")
    assert r.returncode == EXIT_BUNDLE and "Traceback" not in r.stderr
    r = edgecl("learn", base, "--data", d / "new.npy")  # --class missing
    assert r.returncode == EXIT_USAGE
    r = edgecl("bench", "latency", base, "--repeat", "0")
    assert r.returncode == EXIT_USAGE
    r = edgecl("learn", base, "--class", "a", "--data", d / "new.npy", "-o", out)  # exists
    assert r.returncode == EXIT_USAGE and "already learned" in r.stderr and "--update" in r.stderr
    assert "Traceback" not in r.stderr and "head" not in r.stderr  # no bar before the error
    assert not out.exists()
    r = edgecl("--debug", "learn", base, "--class", "a", "--data", d / "new.npy", "-o", out)
    assert "Traceback" in r.stderr
