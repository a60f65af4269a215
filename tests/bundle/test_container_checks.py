"""The container's checks before anything is allocated (the .npy header, the declared
total, the manifest's JSON numbers), the manifest check hook, and the one atomic write."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest

from edgecl import bundle as B
from edgecl.errors import BundleError


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _rewrite(path, members, manifest_text=None):
    """Rezip ``members`` with the checksums recomputed (as the writer does)."""
    manifest = json.loads(members.pop("manifest.json"))
    for name, spec in manifest["arrays"].items():
        spec["sha256"] = hashlib.sha256(members[name + ".npy"]).hexdigest()
    text = manifest_text(manifest) if manifest_text else json.dumps(manifest)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", text)
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "s.ecl"
    B.write_bundle(path, {"note": 1.5}, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    return path


def test_trailing_bytes_after_the_array_refused(small):
    members = _members(small)
    members["w.npy"] += b"\x00" * 8
    _rewrite(small, members)
    with pytest.raises(BundleError, match="data bytes after the .npy header"):
        B.read_bundle(small)


def test_fortran_order_header_refused(small):
    members = _members(small)
    members["w.npy"] = members["w.npy"].replace(
        b"'fortran_order': False", b"'fortran_order': True "
    )
    _rewrite(small, members)
    with pytest.raises(BundleError, match="C-order"):
        B.read_bundle(small)


def test_header_dtype_other_than_the_manifest_refused(small):
    members = _members(small)
    members["w.npy"] = members["w.npy"].replace(b"'<f4'", b"'<i4'")
    _rewrite(small, members)
    with pytest.raises(BundleError, match="expected dtype <f4, got <i4"):
        B.read_bundle(small)


@pytest.mark.parametrize("number", ["1e400", "-1e999", "NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_refused(small, number):
    members = _members(small)
    _rewrite(small, members, lambda m: json.dumps(m).replace('"note": 1.5', f'"note": {number}'))
    with pytest.raises(BundleError, match="refused"):
        B.read_bundle(small)


def test_declared_total_capped(tmp_path):
    path = tmp_path / "t.ecl"
    B.write_bundle(path, {}, {"a": np.zeros(600, np.uint8), "b": np.zeros(600, np.uint8)})
    B.read_bundle(path, max_total_bytes=1200)
    with pytest.raises(BundleError, match="at most 1000 bytes in all, got a declared 1200"):
        B.read_bundle(path, max_total_bytes=1000)


def test_check_runs_before_any_array_is_read(small):
    members = _members(small)
    members["w.npy"] = members["w.npy"][:-4] + b"\xff" * 4  # checksum now wrong
    with zipfile.ZipFile(small, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    seen = []

    class Refused(Exception):
        pass

    def check(manifest):
        seen.append(sorted(manifest["arrays"]))
        raise Refused

    with pytest.raises(Refused):
        B.read_bundle(small, check=check)
    assert seen == [["w"]]
    with pytest.raises(BundleError, match="sha256"):
        B.read_bundle(small, check=lambda m: None)


def test_write_atomic(tmp_path):
    target = tmp_path / "out.bin"
    assert B.write_atomic(target, b"one") == target
    with pytest.raises(FileExistsError):
        B.write_atomic(target, b"two")
    B.write_atomic(target, lambda fh: fh.write(b"three"), overwrite=True)
    assert target.read_bytes() == b"three"
    with pytest.raises(FileNotFoundError):
        B.write_atomic(tmp_path / "no" / "x.bin", b"")

    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        B.write_atomic(target, broken, overwrite=True)
    assert target.read_bytes() == b"three"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary file left


def test_parse_manifest_keeps_ordinary_numbers():
    raw = b'{"a": 1, "b": -2.5e-3, "c": [1e300, 0]}'
    assert B.parse_manifest(raw) == {"a": 1, "b": -2.5e-3, "c": [1e300, 0]}
    with pytest.raises(ValueError):
        B.parse_manifest(b'{"a": NaN}')
