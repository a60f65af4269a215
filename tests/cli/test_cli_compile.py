"""``edgecl compile``: a line per kernel group, the one-line notice on the first compile
only, and Numba's cache in NUMBA_CACHE_DIR (a read-only install still caches)."""

from __future__ import annotations

import os
import subprocess
import sys

import devicehelpers

from edgecl.cli.compile import COMPILE_BUNDLE
from edgecl.data import sample_dir


def test_the_default_bundle_is_shipped():
    from edgecl.device import Runtime

    rt = Runtime.load(sample_dir() / COMPILE_BUNDLE)
    ops = {layer["op"] for layer in rt.layers}
    assert {"conv2d_binary", "dense_binary"} <= ops and rt.input_spec.shape == (28, 28, 1)


def test_compile_notice_once_and_cache_dir(tmp_path):
    h = devicehelpers
    x, y = h.synthetic_stream(3, 20, seed=1)
    bundle = h.make_bundle(tmp_path / "m.ecl", x, y, ["a", "b", "c"])
    cache = tmp_path / "numba-cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))

    def run():
        return subprocess.run(
            [sys.executable, "-m", "edgecl", "compile", str(bundle)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )

    r = run()
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("compiling edgecl's kernels for this CPU, once") == 1
    assert "layer program and head (predict)" in r.stderr
    assert "class memory and head training" in r.stderr
    assert str(cache) in r.stdout
    assert any(p.suffix in (".nbi", ".nbc") for p in cache.rglob("*"))
    r = run()
    assert r.returncode == 0, r.stderr
    assert "compiling edgecl's kernels" not in r.stderr
