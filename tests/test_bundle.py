"""The bundle format: round trip, determinism, atomic saves and every kind of corruption."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from edgecl import bundle as B
from edgecl.errors import BundleError


def _content():
    rng = np.random.default_rng(0)
    arrays = {
        "layer0.weight": rng.standard_normal((3, 3, 1, 5)).astype(np.float32),
        "layer1.words": rng.integers(0, 2**63, size=(7, 2), dtype=np.uint64),
        "layer1.thresholds": rng.integers(-50, 50, size=7).astype(np.int32),
        "layer1.flip": rng.random(7) < 0.5,
        "empty": np.zeros((0, 4), np.float64),
        "scalar": np.array(3, np.int64),
        "bytes": np.frombuffer(b"onnx-graph-bytes", np.uint8).copy(),
    }
    manifest = {"classes": ["0", "1", "2"], "note": "é", "nested": {"b": 1, "a": [1, 2]}}
    return manifest, arrays


@pytest.fixture
def written(tmp_path):
    manifest, arrays = _content()
    path = tmp_path / "m.ecl"
    B.write_bundle(path, manifest, arrays)
    return path, manifest, arrays


def _same(arrays_a, arrays_b):
    assert sorted(arrays_a) == sorted(arrays_b)
    for k in arrays_a:
        assert arrays_a[k].dtype == arrays_b[k].dtype, k
        assert arrays_a[k].shape == arrays_b[k].shape, k
        np.testing.assert_array_equal(arrays_a[k], arrays_b[k])


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _rezip(path, members, *, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _manifest_of(members):
    return json.loads(members["manifest.json"])


# -- round trip and determinism ------------------------------------------------------------


def test_round_trip(written):
    path, manifest, arrays = written
    got_manifest, got = B.read_bundle(path)
    _same(arrays, got)
    assert got_manifest["format"] == "edgecl-bundle"
    assert got_manifest["schema_version"] == 1
    assert got_manifest["creator"]["name"] == "edgecl"
    for k, v in manifest.items():
        assert got_manifest[k] == v
    spec = got_manifest["arrays"]["layer1.words"]
    assert spec["shape"] == [7, 2] and spec["dtype"] == "<u8"


def test_write_is_deterministic_and_leaves_input_alone(tmp_path):
    manifest, arrays = _content()
    before = json.dumps(manifest, sort_keys=True)
    copies = {k: v.copy() for k, v in arrays.items()}
    a = B.write_bundle(tmp_path / "a.ecl", manifest, arrays)
    # same content, other insertion order
    b = B.write_bundle(
        tmp_path / "b.ecl", dict(reversed(manifest.items())), dict(reversed(arrays.items()))
    )
    assert (tmp_path / "a.ecl").read_bytes() == (tmp_path / "b.ecl").read_bytes()
    assert a.sha256 == b.sha256 == hashlib.sha256((tmp_path / "a.ecl").read_bytes()).hexdigest()
    assert a.file_bytes == (tmp_path / "a.ecl").stat().st_size
    assert json.dumps(manifest, sort_keys=True) == before
    assert "arrays" not in manifest
    _same(copies, arrays)
    assert a.array_bytes["layer1.words"] == 7 * 2 * 8
    assert "a.ecl" in str(a) and a.to_dict()["file_bytes"] == a.file_bytes


def test_big_endian_input_is_stored_little_endian(tmp_path):
    x = np.arange(5, dtype=">i4")
    B.write_bundle(tmp_path / "x.ecl", {}, {"x": x})
    _, got = B.read_bundle(tmp_path / "x.ecl")
    assert got["x"].dtype.str == "<i4"
    np.testing.assert_array_equal(got["x"], x)


def test_refuses_overwrite_unless_asked(written):
    path, manifest, arrays = written
    before = path.read_bytes()
    with pytest.raises(BundleError, match="exists"):
        B.write_bundle(path, manifest, {"other": np.zeros(3)})
    assert path.read_bytes() == before
    B.write_bundle(path, manifest, {"other": np.zeros(3)}, overwrite=True)
    assert sorted(B.read_bundle(path)[1]) == ["other"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize("name", ["../evil", "a/b", "/abs", "", "a..b", ".hidden", "x" * 200, 5])
def test_write_refuses_bad_names(tmp_path, name):
    with pytest.raises(BundleError, match="array name"):
        B.write_bundle(tmp_path / "x.ecl", {}, {name: np.zeros(2)})
    assert not (tmp_path / "x.ecl").exists()


@pytest.mark.parametrize(
    "value", [np.array(["a", "b"]), np.array([object()], dtype=object), np.zeros(2, np.complex64)]
)
def test_write_refuses_non_numeric(tmp_path, value):
    with pytest.raises(BundleError, match="expected"):
        B.write_bundle(tmp_path / "x.ecl", {}, {"v": value})


def test_write_refuses_non_json_manifest(tmp_path):
    with pytest.raises(BundleError, match="JSON"):
        B.write_bundle(tmp_path / "x.ecl", {"bad": float("nan")}, {})
    with pytest.raises(BundleError, match="JSON"):
        B.write_bundle(tmp_path / "x.ecl", {"bad": object()}, {})


# -- corruption --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(BundleError, match="expected a bundle file"):
        B.read_bundle(tmp_path / "none.ecl")


def test_truncation_at_many_offsets(written, tmp_path):
    path, _, _ = written
    data = path.read_bytes()
    cut = tmp_path / "cut.ecl"
    offsets = sorted(set(range(0, len(data), max(1, len(data) // 97))) | {len(data) - 1, 1, 22})
    for n in offsets:
        cut.write_bytes(data[:n])
        with pytest.raises(BundleError):
            B.read_bundle(cut)


def test_flipped_bytes_never_give_a_wrong_answer(tmp_path):
    """Every single-byte flip either raises BundleError or reads back the same content."""
    path = tmp_path / "small.ecl"
    arrays = {"w": np.array([3, -1, 7], np.int32), "b": np.array([5, 2**63], np.uint64)}
    B.write_bundle(path, {"classes": ["a"]}, arrays)
    data = path.read_bytes()
    manifest0, _ = B.read_bundle(path)
    bad = tmp_path / "bad.ecl"
    raised = 0
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        try:
            manifest, got = B.read_bundle(bad)
        except BundleError:
            raised += 1
            continue
        assert manifest == manifest0, i
        _same(arrays, got)
    # zip headers hold fields that do not matter (timestamps, attributes); the rest must fail
    assert raised > 0.75 * len(data)


def test_missing_member(written):
    path, _, _ = written
    members = _members(path)
    del members["layer1.flip.npy"]
    _rezip(path, members)
    with pytest.raises(BundleError, match=r"missing members \['layer1.flip.npy'\]"):
        B.read_bundle(path)


def test_missing_manifest(written):
    path, _, _ = written
    members = _members(path)
    del members["manifest.json"]
    _rezip(path, members)
    with pytest.raises(BundleError, match="manifest.json"):
        B.read_bundle(path)


def test_extra_member(written):
    path, _, _ = written
    members = _members(path)
    members["intruder.npy"] = members["scalar.npy"]
    _rezip(path, members)
    with pytest.raises(BundleError, match="unexpected members"):
        B.read_bundle(path)


def test_extra_member_not_npy(written):
    path, _, _ = written
    members = _members(path)
    members["README.txt"] = b"hello"
    _rezip(path, members)
    with pytest.raises(BundleError, match="README.txt"):
        B.read_bundle(path)


def test_duplicate_member(written):
    path, _, _ = written
    members = _members(path)
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("scalar.npy", members["scalar.npy"])
    with pytest.raises(BundleError, match="twice"):
        B.read_bundle(path)


@pytest.mark.parametrize("evil", ["../evil.npy", "sub/dir.npy", "/abs.npy", "..npy"])
def test_path_names_refused(written, evil):
    path, _, _ = written
    members = _members(path)
    members[evil] = members["scalar.npy"]
    _rezip(path, members)
    with pytest.raises(BundleError):
        B.read_bundle(path)


def test_manifest_array_name_refused(written):
    path, _, _ = written
    members = _members(path)
    m = _manifest_of(members)
    m["arrays"]["../x"] = m["arrays"].pop("scalar")
    members["manifest.json"] = json.dumps(m).encode()
    _rezip(path, members)
    with pytest.raises(BundleError, match="array name"):
        B.read_bundle(path)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m["arrays"]["layer0.weight"].update(dtype="<f8"), "expected dtype <f8"),
        (lambda m: m["arrays"]["layer0.weight"].update(shape=[3, 3, 5, 1]), "expected shape"),
        (lambda m: m["arrays"]["layer0.weight"].update(dtype="|O"), "expected a dtype"),
        (lambda m: m["arrays"]["layer0.weight"].update(shape=[-1]), "sizes >= 0"),
        (lambda m: m["arrays"]["layer0.weight"].update(shape="3x3"), "shape list"),
        (lambda m: m["arrays"]["layer0.weight"].update(sha256="0" * 64), "expected sha256"),
        (lambda m: m["arrays"]["layer0.weight"].update(extra=1), "expected keys"),
        (lambda m: m.update(schema_version=2), "expected schema_version 1, got 2"),
        (lambda m: m.update(schema_version=True), "schema_version"),
        (lambda m: m.pop("schema_version"), "schema_version"),
        (lambda m: m.update(format="zip"), "expected format 'edgecl-bundle'"),
        (lambda m: m.update(arrays=[]), "'arrays'"),
    ],
)
def test_manifest_disagreeing_with_members(written, change, match):
    path, _, _ = written
    members = _members(path)
    m = _manifest_of(members)
    change(m)
    members["manifest.json"] = json.dumps(m).encode()
    _rezip(path, members)
    with pytest.raises(BundleError, match=match):
        B.read_bundle(path)


def test_member_with_other_dtype_but_matching_checksum(written):
    """A member replaced by another array (checksum updated) still fails on dtype/shape."""
    path, _, _ = written
    members = _members(path)
    m = _manifest_of(members)
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 3, 1, 5), np.float64))
    members["layer0.weight.npy"] = buf.getvalue()
    m["arrays"]["layer0.weight"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    members["manifest.json"] = json.dumps(m).encode()
    _rezip(path, members)
    with pytest.raises(BundleError, match="expected dtype <f4, got <f8"):
        B.read_bundle(path)


def test_pickled_member_refused(written):
    path, _, _ = written
    members = _members(path)
    m = _manifest_of(members)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    members["scalar.npy"] = buf.getvalue()
    m["arrays"]["scalar"] = {
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
        "shape": [],
        "dtype": "<i8",
    }
    members["manifest.json"] = json.dumps(m).encode()
    _rezip(path, members)
    with pytest.raises(BundleError):
        B.read_bundle(path)


@pytest.mark.parametrize("text", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_bad_json(written, text):
    path, _, _ = written
    members = _members(path)
    members["manifest.json"] = text
    _rezip(path, members)
    with pytest.raises(BundleError, match="JSON"):
        B.read_bundle(path)


def test_oversized_member_refused(written):
    path, _, _ = written
    with pytest.raises(BundleError, match="expected at most 100 bytes"):
        B.read_bundle(path, max_member_bytes=100)


def test_oversized_declared_shape_refused(written):
    path, _, _ = written
    members = _members(path)
    m = _manifest_of(members)
    m["arrays"]["layer0.weight"]["shape"] = [2**40, 2**20]
    members["manifest.json"] = json.dumps(m).encode()
    _rezip(path, members)
    with pytest.raises(BundleError, match="declared"):
        B.read_bundle(path)


def _bomb(path, payload_bytes):
    """A deflated member of zeros: tiny on disk, large once inflated."""
    data = np.zeros(payload_bytes, np.uint8)
    buf = io.BytesIO()
    np.save(buf, data)
    raw = buf.getvalue()
    manifest = {
        "format": "edgecl-bundle",
        "schema_version": 1,
        "arrays": {
            "z": {
                "sha256": hashlib.sha256(raw).hexdigest(),
                "shape": [payload_bytes],
                "dtype": "|u1",
            }
        },
    }
    _rezip(
        path,
        {"manifest.json": json.dumps(manifest).encode(), "z.npy": raw},
        compress=zipfile.ZIP_DEFLATED,
    )
    return raw


def test_decompression_bomb_refused(tmp_path):
    path = tmp_path / "bomb.ecl"
    _bomb(path, 4 * 1024 * 1024)
    with pytest.raises(BundleError, match="compression ratio"):
        B.read_bundle(path)


def test_member_larger_than_declared_refused(tmp_path):
    """A member whose zip headers claim fewer bytes than it inflates to."""
    path = tmp_path / "liar.ecl"
    raw = _bomb(path, 3000)
    data = bytearray(path.read_bytes())
    true = len(raw).to_bytes(4, "little")
    small = (len(raw) - 100).to_bytes(4, "little")
    # patch the uncompressed size in the local and the central header of z.npy
    n = 0
    start = 0
    while (i := data.find(true, start)) != -1:
        data[i : i + 4] = small
        start = i + 4
        n += 1
    assert n >= 2
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError):
        B.read_bundle(path)


def test_a_deflated_bundle_within_limits_reads(tmp_path):
    """Other zip writers may compress; a sane compressed member is accepted."""
    path = tmp_path / "ok.ecl"
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=500).astype(np.uint8)  # compresses, but not like a bomb
    buf = io.BytesIO()
    np.save(buf, x)
    raw = buf.getvalue()
    manifest = {
        "format": "edgecl-bundle",
        "schema_version": 1,
        "arrays": {
            "x": {"sha256": hashlib.sha256(raw).hexdigest(), "shape": [500], "dtype": "|u1"}
        },
    }
    _rezip(
        path,
        {"manifest.json": json.dumps(manifest).encode(), "x.npy": raw},
        compress=zipfile.ZIP_DEFLATED,
    )
    _, got = B.read_bundle(path)
    np.testing.assert_array_equal(got["x"], x)


def test_not_a_zip(tmp_path):
    path = tmp_path / "x.ecl"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(BundleError, match="corrupt"):
        B.read_bundle(path)


# -- atomic saves ----------------------------------------------------------------------------


def test_failed_replace_keeps_the_old_file(written, monkeypatch):
    path, manifest, _ = written
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        B.write_bundle(path, manifest, {"new": np.ones(10)}, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    B.read_bundle(path)


def test_failed_write_keeps_the_old_file(written, monkeypatch):
    path, manifest, _ = written
    before = path.read_bytes()

    def boom(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="fsync failed"):
        B.write_bundle(path, manifest, {"new": np.ones(10)}, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_save_killed_midway_leaves_old_file(written):
    """A writer killed with SIGKILL in the middle of a save: the old bundle is untouched."""
    path, _, arrays = written
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, sys, time
        import numpy as np
        from edgecl import bundle as B
        real_write = None
        class Slow:
            def __init__(self, fh):
                self.fh = fh
            def write(self, data):
                half = len(data) // 2
                self.fh.write(data[:half])
                self.fh.flush()
                print("half-written", flush=True)
                time.sleep(60)
            def __getattr__(self, k):
                return getattr(self.fh, k)
            def __enter__(self):
                return self
            def __exit__(self, *a):
                return self.fh.__exit__(*a)
        real_fdopen = os.fdopen
        os.fdopen = lambda *a, **k: Slow(real_fdopen(*a, **k))
        B.write_bundle({str(path)!r}, {{"x": 1}}, {{"big": np.ones(200_000)}}, overwrite=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "half-written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    _, got = B.read_bundle(path)
    _same(arrays, got)
    # the killed writer's temporary file is left beside it, hidden, never read as the bundle
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert all(p.name.startswith(".m.ecl.") and p.name.endswith(".tmp") for p in leftovers)
