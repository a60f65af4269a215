"""Bundles that pass every checksum and still hurt (issue 13, items 19-23): each is made
here from the v1 fixture, its checksums recomputed as the writer does, and must be
refused with ``BundleError`` by ``Runtime.load`` and by ``inspect_bundle`` (so ``edgecl
info`` exits 3), in a subprocess whose address space is capped and within a time limit."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import edgecl

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v1_bundle.ecl"
#: Address space the loads may take on top of what the interpreter holds after imports.
MEMORY_LIMIT = 1 << 30
#: Seconds every hostile bundle together may take to be refused.
TIME_LIMIT = 120


def _run(args, cwd):
    """``python args`` importing the edgecl this test runs on (not whatever is in ``cwd``)."""
    root = str(Path(edgecl.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
    )


RUNNER = """
import json, resource, sys
from edgecl.bundle import inspect_bundle
from edgecl.device import Runtime

def vm_bytes():
    status = open("/proc/self/status").read()
    return int(status.split("VmSize:")[1].split()[0]) * 1024

limit = vm_bytes() + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
out = {}
for path in sys.argv[2:]:
    got = []
    for load in (Runtime.load, inspect_bundle):
        try:
            load(path)
            got.append(["ok", ""])
        except BaseException as exc:  # reported to the test, which says what came
            got.append([type(exc).__name__, str(exc)[:300]])
    out[path] = got
print(json.dumps(out))
"""


def _fixture():
    with zipfile.ZipFile(V1) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    return json.loads(members.pop("manifest.json")), members


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=(1, 0), allow_pickle=False)
    return buf.getvalue()


def _set_array(manifest, members, name, arr):
    members[name + ".npy"] = _npy(arr)
    manifest["arrays"][name] = {"sha256": "", "shape": list(arr.shape), "dtype": arr.dtype.str}


def _array(members, name):
    return np.load(io.BytesIO(members[name + ".npy"]), allow_pickle=False)


def _zip_info(name: str, method: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # as the writer's
    info.compress_type, info.create_system, info.external_attr = method, 3, 0o100644 << 16
    return info


def _write(path: Path, manifest, members, *, deflate=()) -> Path:
    """The bundle as the writer lays it out, every checksum recomputed; JSON written as
    Python writes it (NaN and Infinity allowed, as an attacker may)."""
    for name, spec in manifest["arrays"].items():
        spec["sha256"] = hashlib.sha256(members[name + ".npy"]).hexdigest()
    text = json.dumps(manifest, sort_keys=True, indent=1, allow_nan=True) + "\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(_zip_info("manifest.json", zipfile.ZIP_STORED), text.encode())
        for member in sorted(members):
            method = zipfile.ZIP_DEFLATED if member in deflate else zipfile.ZIP_STORED
            zf.writestr(_zip_info(member, method), members[member], compresslevel=1)
    return path


def _layer(manifest, op):
    return next(layer for layer in manifest["layers"] if layer["op"] == op)


def _rename_class(manifest, old, new):
    for key in ("classes", "base_classes"):
        manifest[key] = [new if c == old else c for c in manifest[key]]
    for entry in manifest["memory"]["spec"]["classes"]:
        if entry["name"] == old:
            entry["name"] = new


def _memory_class_not_in_head(m, a):
    m["memory"]["spec"]["classes"][0]["name"] = "zz"


def _nan_head_bias(m, a):
    bias = _array(a, "head.bias")
    bias[0] = np.nan
    _set_array(m, a, "head.bias", bias)


def _inf_int8_scale(m, a):
    scale = _array(a, "head.weight.scale")
    scale[1] = np.inf
    _set_array(m, a, "head.weight.scale", scale)


def _inf_gbm_pi(m, a):
    pi = _array(a, "memory.pi")
    pi[0] = np.inf
    _set_array(m, a, "memory.pi", pi)


def _npy_header_claims_4_tib(m, a):
    """A 128-byte header claiming shape (2**40,) in front of the original data bytes."""
    data = a["head.bias.npy"]
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }"
    header = header.ljust(128 - 10 - 1) + "\n"
    a["head.bias.npy"] = (
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data[-12:]
    )


def _unreferenced_member(m, a):
    _set_array(m, a, "junk", np.arange(10, dtype=np.uint8))


def _huge_unreferenced_members(m, a):
    """Five members of 200 MiB each, deflated at ratio ~36 (under the per-member limits):
    a 28 MiB file that declares 1 GiB of arrays."""
    data = np.zeros(200 << 20, np.uint8)
    data[::97] = np.random.default_rng(0).integers(0, 256, data[::97].shape)
    raw = _npy(data)
    for i in range(5):
        a[f"junk{i}.npy"] = raw
        m["arrays"][f"junk{i}"] = {"sha256": "", "shape": [data.size], "dtype": "|u1"}


def _set(*keys, value):
    def change(m, a):
        d = m
        for k in keys[:-1]:
            d = _layer(m, k) if k in ("dense_binary", "conv2d_float") else d[k]
        d[keys[-1]] = value

    return change


CASES = {
    # item 19: semantic inconsistencies
    "memory class absent from the head": (_memory_class_not_in_head, "memory"),
    "layer offset 2**70": (_set("dense_binary", "offset", value=2**70), "offset"),
    "class name with a newline": (lambda m, a: _rename_class(m, "a", "a\nb"), "class name"),
    "class name of 500 characters": (lambda m, a: _rename_class(m, "a", "x" * 500), "class name"),
    "NaN head bias": (_nan_head_bias, "head.bias"),
    "infinite int8 scale": (_inf_int8_scale, "head.scale"),
    "negative lr": (_set("head", "lr", value=-0.5), "lr"),
    "batch size 0": (_set("head", "batch_size", value=0), "batch_size"),
    "negative gbm weight": (_set("head", "gbm_weight", value=-1.0), "gbm_weight"),
    "budget below the stored bytes": (_set("budget", "bytes", value=100), "budget"),
    "infinite GBM mixing weight": (_inf_gbm_pi, "memory.arrays['pi']"),
    # item 20: an .npy header trusted before it is checked
    "npy header claiming 4 TiB": (_npy_header_claims_4_tib, "shape"),
    # item 21: unreferenced members, total decompressed size
    "unreferenced member": (_unreferenced_member, "unreferenced"),
    "1 GiB of unreferenced members": (_huge_unreferenced_members, "in all"),
    # item 22: NaN / Infinity in the manifest's JSON
    "input.scale Infinity": (_set("input", "scale", value=float("inf")), "JSON"),
    "pad_value NaN": (_set("conv2d_float", "pad_value", value=float("nan")), "JSON"),
    "head.epochs Infinity": (_set("head", "epochs", value=float("inf")), "JSON"),
    "memory components Infinity": (
        lambda m, a: m["memory"]["spec"]["classes"][0].update(components=float("inf")),
        "JSON",
    ),
    # item 23: training settings beyond what a device can do
    "head.batch_size 10**9": (_set("head", "batch_size", value=10**9), "batch_size"),
    "head.epochs 10**9": (_set("head", "epochs", value=10**9), "epochs"),
    "GBM EM iterations 10**9": (
        lambda m, a: m["memory"]["spec"]["config"].update(n_max=10**9),
        "n_max",
    ),
}


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """``{case: [[error type, message] of Runtime.load, ... of inspect_bundle]}``."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for i, (case, (change, _)) in enumerate(CASES.items()):
        manifest, members = _fixture()
        change(manifest, members)
        deflate = {n for n in members if n.startswith("junk")}
        paths[case] = str(_write(folder / f"case{i}.ecl", manifest, members, deflate=deflate))
    proc = _run(["-c", RUNNER, str(MEMORY_LIMIT), *paths.values()], folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {case: got[path] for case, path in paths.items()}, paths


def test_the_untouched_fixture_loads(tmp_path):
    manifest, members = _fixture()
    path = _write(tmp_path / "same.ecl", manifest, members)
    assert path.read_bytes() == V1.read_bytes()  # the crafting is the writer's layout


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_bundle_refused(refused, case):
    results, _ = refused
    match = CASES[case][1]
    for verb, (kind, message) in zip(
        ("Runtime.load", "inspect_bundle"), results[case], strict=True
    ):
        assert kind == "BundleError", f"{verb}: expected BundleError, got {kind}: {message}"
        assert match in message, f"{verb}: expected {match!r} in {message!r}"


def test_info_exits_3(refused):
    _, paths = refused
    for case in ("budget below the stored bytes", "input.scale Infinity"):
        proc = _run(["-m", "edgecl.cli", "info", paths[case]], Path(paths[case]).parent)
        assert proc.returncode == 3, (case, proc.stdout, proc.stderr)
