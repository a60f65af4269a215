"""The device bundle format: one ``.ecl`` zip of ``manifest.json`` and ``.npy`` arrays.

Torch-free. The layout (schema version 1):

- ``manifest.json``: a JSON object with ``format`` (``"edgecl-bundle"``),
  ``schema_version`` (1), ``creator`` (name and version of the writer) and
  ``arrays``: for every array member, its ``sha256`` (of the member's bytes),
  ``shape`` and ``dtype`` (NumPy's ``dtype.str``, little-endian). The rest of
  the manifest (layers, input spec, classes, memory, head, budget) is checked by
  :func:`validate_manifest`.
- ``<name>.npy`` for every array ``name`` in the manifest; plain ``.npy`` files,
  never pickled.

Writing is deterministic (members stored uncompressed in sorted order with fixed
timestamps, JSON with sorted keys), so the same content gives the same bytes, and
atomic (a temporary file in the same folder, flushed, fsynced and renamed over the
target). Reading checks every name, size, checksum, shape and dtype and raises
:class:`~edgecl.errors.BundleError` saying what was expected and what came.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecl.errors import BundleError
from edgecl.kernels.bits import n_words

FORMAT_NAME = "edgecl-bundle"
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
ARRAY_SUFFIX = ".npy"

#: Largest array member a reader accepts by default (bytes, uncompressed).
MAX_MEMBER_BYTES = 256 * 1024 * 1024
#: Largest manifest a reader accepts (bytes).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: Largest number of members a reader accepts.
MAX_MEMBERS = 4096
#: Largest uncompressed/compressed ratio accepted for a compressed member.
MAX_COMPRESSION_RATIO = 200
#: Room for the ``.npy`` header on top of an array's data bytes.
_NPY_HEADER_SLACK = 4096

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
#: dtypes a bundle may hold (NumPy ``dtype.str``); never object or structured data.
ALLOWED_DTYPES = frozenset(
    np.dtype(t).newbyteorder("<").str if np.dtype(t).itemsize > 1 else np.dtype(t).str
    for t in (
        np.bool_,
        np.int8,
        np.uint8,
        np.int16,
        np.uint16,
        np.int32,
        np.uint32,
        np.int64,
        np.uint64,
        np.float16,
        np.float32,
        np.float64,
    )
)

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
    OverflowError,
)


@dataclass(frozen=True)
class BundleInfo:
    """What was written: the path, the file's size and SHA-256, and the manifest."""

    path: Path
    file_bytes: int
    sha256: str
    manifest: Mapping[str, Any] = field(repr=False)

    @property
    def array_bytes(self) -> dict[str, int]:
        """Data bytes of every array member (without ``.npy`` headers)."""
        out = {}
        for name, spec in self.manifest.get("arrays", {}).items():
            count = math.prod(int(s) for s in spec["shape"])
            out[name] = count * np.dtype(spec["dtype"]).itemsize
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "file_bytes": self.file_bytes,
            "sha256": self.sha256,
            "array_bytes": self.array_bytes,
            "manifest": copy.deepcopy(dict(self.manifest)),
        }

    def __str__(self) -> str:
        n = len(self.manifest.get("arrays", {}))
        return f"{self.path}: {self.file_bytes} bytes, {n} arrays, sha256 {self.sha256[:16]}…"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise BundleError(
            "expected an array name of letters, digits, '_', '.', '-' (no '/', no '..', "
            f"at most 128 characters), got {name!r}"
        )
    return name


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=(1, 0), allow_pickle=False)
    return buf.getvalue()


def _normalise_array(name: str, value: object) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind in "OVUSMm" or arr.dtype.fields is not None:
        raise BundleError(f"array {name!r}: expected a numeric or boolean dtype, got {arr.dtype}")
    if arr.dtype.itemsize > 1 and arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # (ascontiguousarray would turn 0-d into 1-d)
    if arr.dtype.str not in ALLOWED_DTYPES:
        raise BundleError(
            f"array {name!r}: expected one of {sorted(ALLOWED_DTYPES)}, got {arr.dtype.str}"
        )
    return arr


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(manifest, sort_keys=True, indent=1, allow_nan=False, ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"expected a JSON-serialisable manifest, got: {exc}") from exc
    return (text + "\n").encode("ascii")


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def bundle_bytes(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """The exact bytes :func:`write_bundle` writes for this content (no file touched)."""
    if not isinstance(manifest, Mapping):
        raise BundleError(f"expected a manifest mapping, got {type(manifest).__name__}")
    if not isinstance(arrays, Mapping):
        raise BundleError(f"expected a mapping of arrays, got {type(arrays).__name__}")
    from edgecl import __version__

    members: dict[str, bytes] = {}
    table: dict[str, dict[str, Any]] = {}
    for name in sorted(arrays):
        _check_name(name)
        arr = _normalise_array(name, arrays[name])
        data = _npy_bytes(arr)
        members[name + ARRAY_SUFFIX] = data
        table[name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "shape": [int(s) for s in arr.shape],
            "dtype": arr.dtype.str,
        }
    full = copy.deepcopy(dict(manifest))
    full["format"] = FORMAT_NAME
    full["schema_version"] = SCHEMA_VERSION
    full["creator"] = {"name": "edgecl", "version": __version__}
    full["arrays"] = table

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=False) as zf:
        zf.writestr(_zip_info(MANIFEST_NAME), _manifest_bytes(full))
        for member in sorted(members):
            zf.writestr(_zip_info(member), members[member])
    return buf.getvalue()


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bundle(
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    overwrite: bool = False,
) -> BundleInfo:
    """Write a bundle atomically and return its :class:`BundleInfo`.

    The manifest's ``format``, ``schema_version``, ``creator`` and ``arrays`` keys are
    filled in (the caller's dict is not changed). Refuses an existing ``path`` unless
    ``overwrite=True``. A crash at any point leaves a previous file at ``path`` intact.
    """
    path = Path(path)
    data = bundle_bytes(manifest, arrays)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BundleError(f"expected an existing folder for {path}, got none at {folder}")
    if path.exists() and not overwrite:
        raise BundleError(f"{path} exists; pass overwrite=True to replace it")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if path.exists() and not overwrite:
            raise BundleError(f"{path} exists; pass overwrite=True to replace it")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    manifest_out = _read_manifest_from_bytes(data)
    return BundleInfo(
        path=path,
        file_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        manifest=manifest_out,
    )


def _read_manifest_from_bytes(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read(MANIFEST_NAME).decode("ascii"))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, what: str) -> bytes:
    """Read one member, refusing more than ``cap`` bytes or more than its declared size."""
    if info.file_size > cap:
        raise BundleError(f"{what}: expected at most {cap} bytes, got a declared {info.file_size}")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise BundleError(
                f"{what}: stored member declares {info.file_size} bytes but holds "
                f"{info.compress_size}"
            )
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > MAX_COMPRESSION_RATIO:
            raise BundleError(
                f"{what}: expected a compression ratio of at most {MAX_COMPRESSION_RATIO}, "
                f"got {ratio:.0f} (a decompression bomb?)"
            )
    else:
        raise BundleError(
            f"{what}: expected a stored or deflated member, got compression method "
            f"{info.compress_type}"
        )
    if info.flag_bits & 0x1:
        raise BundleError(f"{what}: expected an unencrypted member, got an encrypted one")
    chunks = []
    total = 0
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(min(1 << 20, info.file_size - total + 1))
            if not chunk:
                break
            total += len(chunk)
            if total > info.file_size:
                raise BundleError(f"{what}: expected {info.file_size} bytes as declared, got more")
            chunks.append(chunk)
    if total != info.file_size:
        raise BundleError(f"{what}: expected {info.file_size} bytes as declared, got {total}")
    return b"".join(chunks)


def _expect_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BundleError(f"{what}: expected an integer, got {value!r}")
    return value


def _check_array_table(table: object, max_member_bytes: int) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise BundleError(f"manifest 'arrays': expected an object, got {type(table).__name__}")
    if len(table) > MAX_MEMBERS:
        raise BundleError(f"expected at most {MAX_MEMBERS} arrays, got {len(table)}")
    for name, spec in table.items():
        _check_name(name)
        if not isinstance(spec, dict) or set(spec) != {"sha256", "shape", "dtype"}:
            raise BundleError(
                f"manifest arrays[{name!r}]: expected keys dtype, sha256, shape, got "
                f"{sorted(spec) if isinstance(spec, dict) else type(spec).__name__}"
            )
        sha = spec["sha256"]
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise BundleError(
                f"manifest arrays[{name!r}]: expected a sha256 hex digest, got {sha!r}"
            )
        shape = spec["shape"]
        if not isinstance(shape, list) or len(shape) > 32:
            raise BundleError(f"manifest arrays[{name!r}]: expected a shape list, got {shape!r}")
        for s in shape:
            if _expect_int(s, f"manifest arrays[{name!r}] shape") < 0:
                raise BundleError(f"manifest arrays[{name!r}]: expected sizes >= 0, got {shape}")
        if spec["dtype"] not in ALLOWED_DTYPES:
            raise BundleError(
                f"manifest arrays[{name!r}]: expected a dtype in {sorted(ALLOWED_DTYPES)}, "
                f"got {spec['dtype']!r}"
            )
        nbytes = math.prod(shape) * np.dtype(spec["dtype"]).itemsize
        if nbytes > max_member_bytes:
            raise BundleError(
                f"array {name!r}: expected at most {max_member_bytes} bytes, got a declared "
                f"{nbytes} (shape {shape}, dtype {spec['dtype']})"
            )
    return table


def read_bundle(
    path: str | os.PathLike[str],
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a bundle; return ``(manifest, arrays)``.

    Checks the format name and schema version, member names (plain names only, no
    duplicates), member sizes (at most ``max_member_bytes``, no decompression bombs),
    every SHA-256, shape and dtype against the manifest, and that the members are
    exactly the manifest's arrays. Anything wrong raises :class:`BundleError`.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"expected a bundle file at {path}, got none")
    try:
        with zipfile.ZipFile(path, "r") as zf:
            return _read_open_zip(zf, path, max_member_bytes)
    except BundleError:
        raise
    except _ZIP_ERRORS as exc:
        raise BundleError(
            f"{path}: expected an edgecl bundle (zip), got a corrupt file: {exc}"
        ) from exc


def _read_open_zip(
    zf: zipfile.ZipFile, path: Path, max_member_bytes: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS + 1:
        raise BundleError(f"{path}: expected at most {MAX_MEMBERS + 1} members, got {len(infos)}")
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if name in by_name:
            raise BundleError(f"{path}: expected unique member names, got {name!r} twice")
        if name != MANIFEST_NAME:
            if not name.endswith(ARRAY_SUFFIX):
                raise BundleError(f"{path}: expected members manifest.json and *.npy, got {name!r}")
            _check_name(name[: -len(ARRAY_SUFFIX)])
        by_name[name] = info
    if MANIFEST_NAME not in by_name:
        raise BundleError(f"{path}: expected a member {MANIFEST_NAME!r}, got {sorted(by_name)}")

    raw = _read_member(zf, by_name[MANIFEST_NAME], MAX_MANIFEST_BYTES, "manifest.json")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: expected a JSON manifest, got invalid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object manifest, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT_NAME:
        raise BundleError(
            f"{path}: expected format {FORMAT_NAME!r}, got {manifest.get('format')!r}"
        )
    version = manifest.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise BundleError(f"{path}: expected schema_version {SCHEMA_VERSION}, got {version!r}")
    table = _check_array_table(manifest.get("arrays"), max_member_bytes)

    expected = {n + ARRAY_SUFFIX for n in table}
    present = set(by_name) - {MANIFEST_NAME}
    if present - expected:
        raise BundleError(f"{path}: unexpected members {sorted(present - expected)}")
    if expected - present:
        raise BundleError(f"{path}: missing members {sorted(expected - present)}")

    arrays: dict[str, np.ndarray] = {}
    for name in sorted(table):
        spec = table[name]
        what = f"{path}: array {name!r}"
        nbytes = math.prod(spec["shape"]) * np.dtype(spec["dtype"]).itemsize
        data = _read_member(zf, by_name[name + ARRAY_SUFFIX], nbytes + _NPY_HEADER_SLACK, what)
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec["sha256"]:
            raise BundleError(f"{what}: expected sha256 {spec['sha256']}, got {digest}")
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise BundleError(f"{what}: expected a .npy array, got: {exc}") from exc
        if not isinstance(arr, np.ndarray):
            raise BundleError(f"{what}: expected one .npy array, got {type(arr).__name__}")
        if arr.dtype.str != spec["dtype"]:
            raise BundleError(f"{what}: expected dtype {spec['dtype']}, got {arr.dtype.str}")
        if list(arr.shape) != spec["shape"]:
            raise BundleError(f"{what}: expected shape {tuple(spec['shape'])}, got {arr.shape}")
        arrays[name] = arr
    return manifest, arrays


# -- the semantic manifest (what the device runtime needs) ---------------------------------

#: Layer operations of the device program and the arrays each one names.
#: Values flow as ``float`` (float32 NHWC or (N, F)), ``int`` (int32 accumulators) or
#: ``bits`` (uint64 words packed along the last axis, :mod:`edgecl.kernels.bits`).
LAYER_OPS: dict[str, dict[str, Any]] = {
    # float conv on float NHWC: weight (O, kh, kw, C) float32; pads (top, bottom, left, right)
    "conv2d_float": {"arrays": ("weight", "bias?"), "in": "float", "out": "float"},
    # float dense: weight (F, O) float32
    "dense_float": {"arrays": ("weight", "bias?"), "in": "float", "out": "float"},
    # per-channel y = x * scale + shift in float32 (a BatchNorm not followed by a sign)
    "affine": {"arrays": ("scale", "shift"), "in": "float|int", "out": "float"},
    "maxpool_float": {"arrays": (), "in": "float", "out": "float"},
    "maxpool_bits": {"arrays": (), "in": "bits", "out": "bits"},
    # (H, W, C) -> (H*W*C,) in H, W, C order; bits keep n_words(C) words per pixel
    "flatten": {"arrays": (), "in": "float|bits", "out": "float|bits"},
    # bit = acc >= t (acc <= t where flip); each channel repeated `repeat` times first
    "threshold": {"arrays": ("thresholds", "flip"), "in": "int", "out": "bits"},
    "threshold_float": {"arrays": ("thresholds", "flip"), "in": "float", "out": "bits"},
    # ±1 conv on bits: weight (O, kh, kw, n_words(C)) uint64
    "conv2d_binary": {"arrays": ("weight",), "in": "bits", "out": "int"},
    # ±1 dense on bits: weight (O, words) uint64; acc = binary_dense(x, w, n) + offset
    "dense_binary": {"arrays": ("weight",), "in": "bits", "out": "int"},
}

_TOP_KEYS = ("input", "layers", "embedding", "head", "classes", "memory", "budget")


#: Precisions a stored head may have: float32, float16, or int8 with one float32 scale
#: per class (symmetric, ``w = q * scale``). The bias is float32 in every case.
HEAD_BITS = (32, 16, 8)
_HEAD_DTYPES = {32: "<f4", 16: "<f2", 8: "|i1"}


def head_bytes_per_class(n_bits: int, bits: int = 32) -> int:
    """Stored bytes of one class's head row: D weights at ``bits``, the float32 bias and,
    for int8, the float32 scale."""
    if bits not in HEAD_BITS:
        raise ValueError(f"expected head bits in {HEAD_BITS}, got {bits!r}")
    return int(n_bits) * bits // 8 + 4 + (4 if bits == 8 else 0)


def encode_head(weight: np.ndarray, bits: int) -> dict[str, np.ndarray]:
    """The stored arrays of a float head ``weight`` (D, C): ``{"weight"}`` at float32 or
    float16, or ``{"weight": int8, "scale": float32 (C,)}`` with
    ``scale[c] = max |w[:, c]| / 127`` (1 for an all-zero column) and
    ``q = round(w / scale)``."""
    if bits not in HEAD_BITS:
        raise ValueError(f"expected head bits in {HEAD_BITS}, got {bits!r}")
    w = np.asarray(weight, np.float32)
    if bits == 32:
        return {"weight": w.copy()}
    if bits == 16:
        return {"weight": w.astype(np.float16)}
    peak = np.abs(w).max(axis=0) if w.size else np.zeros(w.shape[1], np.float32)
    scale = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return {"weight": q, "scale": scale}


def decode_head(stored: Mapping[str, np.ndarray], bits: int) -> np.ndarray:
    """The float32 head (D, C) that :func:`encode_head`'s arrays stand for."""
    w = np.asarray(stored["weight"])
    if bits == 8:
        return (w.astype(np.float32) * np.asarray(stored["scale"], np.float32)).astype(np.float32)
    return np.ascontiguousarray(w, np.float32)


def round_head(weight: np.ndarray, bits: int) -> np.ndarray:
    """``decode_head(encode_head(weight, bits), bits)``: the head as it will be stored."""
    return decode_head(encode_head(weight, bits), bits)


def head_arrays(head: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A (validated) manifest head's stored arrays by role: ``weight``, ``bias``, and
    ``scale`` for an int8 head."""
    out = {"weight": arrays[head["weight"]], "bias": arrays[head["bias"]]}
    if int(head.get("bits", 32)) == 8:
        out["scale"] = arrays[head["scale"]]
    return out


def head_weight(head: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """A (validated) manifest head's weight as float32 (D, C), whatever its precision."""
    return decode_head(head_arrays(head, arrays), int(head.get("bits", 32)))


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise BundleError(message)


def _shape_of(arrays: Mapping[str, np.ndarray] | None, manifest: Mapping[str, Any], name: str):
    if arrays is not None:
        return tuple(arrays[name].shape), arrays[name].dtype.str
    spec = manifest["arrays"][name]
    return tuple(spec["shape"]), spec["dtype"]


def validate_manifest(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> None:
    """Check the semantic keys a device runtime needs (input spec, layers, embedding,
    head, classes, memory, budget) and that every array they name exists with the
    right shape and dtype. Raises :class:`BundleError` saying what is wrong."""
    _need(isinstance(manifest, Mapping), f"expected a manifest mapping, got {type(manifest)}")
    missing = [k for k in _TOP_KEYS if k not in manifest]
    _need(not missing, f"manifest: expected keys {list(_TOP_KEYS)}, missing {missing}")
    names = set(arrays) if arrays is not None else set(manifest.get("arrays", {}))

    def arr(ref: object, what: str, dtype: str, ndim: int | None = None) -> tuple[int, ...]:
        _need(isinstance(ref, str) and ref in names, f"{what}: expected an array name, got {ref!r}")
        shape, dt = _shape_of(arrays, manifest, ref)
        _need(dt == dtype, f"{what} ({ref}): expected dtype {dtype}, got {dt}")
        _need(
            ndim is None or len(shape) == ndim, f"{what} ({ref}): expected {ndim} axes, got {shape}"
        )
        return shape

    def pos_int(v: object, what: str, minimum: int = 1) -> int:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= minimum
        _need(ok, f"{what}: expected an integer >= {minimum}, got {v!r}")
        return v

    def shape_list(v: object, what: str) -> tuple[int, ...]:
        _need(
            isinstance(v, list) and len(v) in (1, 3),
            f"{what}: expected [F] or [H, W, C], got {v!r}",
        )
        return tuple(pos_int(s, what) for s in v)

    inp = manifest["input"]
    _need(isinstance(inp, Mapping), f"manifest 'input': expected an object, got {inp!r}")
    shape = shape_list(inp.get("shape"), "input.shape")
    _need(len(shape) == 3, f"input.shape: expected [H, W, C], got {list(shape)}")
    for key in ("mean", "std"):
        v = inp.get(key)
        ok = (
            isinstance(v, list)
            and len(v) == shape[2]
            and all(
                isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
                for a in v
            )
        )
        _need(ok, f"input.{key}: expected {shape[2]} finite numbers, got {v!r}")
    _need(all(s > 0 for s in inp["std"]), f"input.std: expected values > 0, got {inp['std']}")
    scale = inp.get("scale")
    _need(
        isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0,
        f"input.scale: expected a positive number, got {scale!r}",
    )

    layers = manifest["layers"]
    _need(
        isinstance(layers, list) and layers,
        f"manifest 'layers': expected a non-empty list, got {layers!r}",
    )
    kind, cur = "float", shape
    for i, layer in enumerate(layers):
        what = f"layers[{i}]"
        _need(isinstance(layer, Mapping), f"{what}: expected an object, got {layer!r}")
        op = layer.get("op")
        _need(op in LAYER_OPS, f"{what}: expected op in {sorted(LAYER_OPS)}, got {op!r}")
        what = f"layers[{i}] ({op})"
        _need(
            kind in LAYER_OPS[op]["in"].split("|"),
            f"{what}: expected {LAYER_OPS[op]['in']} input, got {kind}",
        )
        _need(
            layer.get("in_shape") == list(cur),
            f"{what}: expected in_shape {list(cur)}, got {layer.get('in_shape')}",
        )
        out = shape_list(layer.get("out_shape"), f"{what}.out_shape")
        for key in LAYER_OPS[op]["arrays"]:
            optional = key.endswith("?")
            key = key.rstrip("?")
            if optional and layer.get(key) is None:
                continue
            _need(key in layer, f"{what}: expected an array reference {key!r}")
        if op == "conv2d_float":
            _need(len(cur) == 3, f"{what}: expected (H, W, C) input, got {list(cur)}")
            o, kh, kw, c = arr(layer["weight"], f"{what}.weight", "<f4", 4)
            _need(c == cur[2], f"{what}.weight: expected {cur[2]} input channels, got {c}")
            pads = layer.get("pads")
            _need(
                isinstance(pads, list)
                and len(pads) == 4
                and all(isinstance(p, int) and p >= 0 for p in pads),
                f"{what}.pads: expected 4 ints >= 0, got {pads!r}",
            )
            s = pos_int(layer.get("stride"), f"{what}.stride")
            ho = (cur[0] + pads[0] + pads[1] - kh) // s + 1
            wo = (cur[1] + pads[2] + pads[3] - kw) // s + 1
            _need(out == (ho, wo, o), f"{what}: expected out_shape {[ho, wo, o]}, got {list(out)}")
            _need(
                isinstance(layer.get("pad_value"), (int, float)),
                f"{what}.pad_value: expected a number",
            )
            if layer.get("bias") is not None:
                _need(
                    arr(layer["bias"], f"{what}.bias", "<f4") == (o,),
                    f"{what}.bias: expected shape ({o},)",
                )
        elif op == "dense_float":
            _need(len(cur) == 1, f"{what}: expected (F,) input, got {list(cur)}")
            f, o = arr(layer["weight"], f"{what}.weight", "<f4", 2)
            _need(
                f == cur[0] and out == (o,),
                f"{what}.weight: expected ({cur[0]}, {out[0]}), got ({f}, {o})",
            )
            if layer.get("bias") is not None:
                _need(
                    arr(layer["bias"], f"{what}.bias", "<f4") == (o,),
                    f"{what}.bias: expected shape ({o},)",
                )
        elif op == "affine":
            for key in ("scale", "shift"):
                _need(
                    arr(layer[key], f"{what}.{key}", "<f4") == (cur[-1],),
                    f"{what}.{key}: expected shape ({cur[-1]},)",
                )
            _need(out == cur, f"{what}: expected out_shape {list(cur)}, got {list(out)}")
        elif op in ("maxpool_float", "maxpool_bits"):
            size = pos_int(layer.get("size"), f"{what}.size")
            s = pos_int(layer.get("stride"), f"{what}.stride")
            _need(
                len(cur) == 3 and cur[0] >= size and cur[1] >= size,
                f"{what}: expected (H, W, C) input of at least {size}x{size}, got {list(cur)}",
            )
            exp = ((cur[0] - size) // s + 1, (cur[1] - size) // s + 1, cur[2])
            _need(out == exp, f"{what}: expected out_shape {list(exp)}, got {list(out)}")
        elif op == "flatten":
            _need(
                len(cur) == 3 and out == (cur[0] * cur[1] * cur[2],),
                f"{what}: expected (H, W, C) -> (H*W*C,), got {list(cur)} -> {list(out)}",
            )
        elif op in ("threshold", "threshold_float"):
            r = pos_int(layer.get("repeat"), f"{what}.repeat")
            dt = "<i4" if op == "threshold" else "<f4"
            n = cur[-1] * r
            _need(
                arr(layer["thresholds"], f"{what}.thresholds", dt) == (n,),
                f"{what}.thresholds: expected shape ({n},)",
            )
            _need(
                arr(layer["flip"], f"{what}.flip", "|b1") == (n,),
                f"{what}.flip: expected shape ({n},)",
            )
            _need(
                out == cur[:-1] + (n,),
                f"{what}: expected out_shape {list(cur[:-1] + (n,))}, got {list(out)}",
            )
        elif op == "conv2d_binary":
            _need(len(cur) == 3, f"{what}: expected (H, W, C) input, got {list(cur)}")
            o, kh, kw, cw = arr(layer["weight"], f"{what}.weight", "<u8", 4)

            _need(
                cw == n_words(cur[2]),
                f"{what}.weight: expected {n_words(cur[2])} words per tap, got {cw}",
            )
            _need(
                layer.get("padding") in ("same", "valid"),
                f"{what}.padding: expected 'same' or 'valid'",
            )
            _need(layer.get("pad_value") in (0, 1), f"{what}.pad_value: expected 0 or 1")
            s = pos_int(layer.get("stride"), f"{what}.stride")
            ph, pw = (kh // 2, kw // 2) if layer["padding"] == "same" else (0, 0)
            exp = ((cur[0] + 2 * ph - kh) // s + 1, (cur[1] + 2 * pw - kw) // s + 1, o)
            _need(out == exp, f"{what}: expected out_shape {list(exp)}, got {list(out)}")
        elif op == "dense_binary":
            _need(len(cur) == 1, f"{what}: expected (F,) input, got {list(cur)}")
            o, words = arr(layer["weight"], f"{what}.weight", "<u8", 2)
            n = pos_int(layer.get("n"), f"{what}.n")
            _need(isinstance(layer.get("offset"), int), f"{what}.offset: expected an int")
            _need(out == (o,), f"{what}: expected out_shape [{o}], got {list(out)}")

            _need(
                words == n_words(n),
                f"{what}.weight: expected {n_words(n)} words for n={n}, got {words}",
            )
        kind = LAYER_OPS[op]["out"] if "|" not in LAYER_OPS[op]["out"] else kind
        cur = out

    emb = manifest["embedding"]
    _need(isinstance(emb, Mapping), f"manifest 'embedding': expected an object, got {emb!r}")
    d = pos_int(emb.get("bits"), "embedding.bits")
    _need(
        kind == "bits" and cur == (d,),
        f"layers: expected to end in {d} embedding bits, got {kind} {list(cur)}",
    )
    _need(
        emb.get("kind") in ("heaviside", "thermometer"),
        f"embedding.kind: expected 'heaviside' or 'thermometer', got {emb.get('kind')!r}",
    )

    classes = manifest["classes"]
    ok = isinstance(classes, list) and classes and all(isinstance(c, str) and c for c in classes)
    _need(ok, f"manifest 'classes': expected a non-empty list of names, got {classes!r}")
    _need(
        len(set(classes)) == len(classes),
        f"manifest 'classes': expected distinct names, got {classes}",
    )

    head = manifest["head"]
    _need(isinstance(head, Mapping), f"manifest 'head': expected an object, got {head!r}")
    hbits = head.get("bits", 32)
    _need(hbits in HEAD_BITS, f"head.bits: expected one of {HEAD_BITS}, got {hbits!r}")
    w = arr(head.get("weight"), "head.weight", _HEAD_DTYPES[hbits], 2)
    _need(w == (d, len(classes)), f"head.weight: expected shape ({d}, {len(classes)}), got {w}")
    if hbits == 8:
        sc = arr(head.get("scale"), "head.scale", "<f4", 1)
        _need(sc == (len(classes),), f"head.scale: expected shape ({len(classes)},), got {sc}")
    b = arr(head.get("bias"), "head.bias", "<f4", 1)
    _need(b == (len(classes),), f"head.bias: expected shape ({len(classes)},), got {b}")
    if head.get("onnx") is not None:
        arr(head["onnx"], "head.onnx", "|u1", 1)

    mem = manifest["memory"]
    if mem is not None:
        _need(
            isinstance(mem, Mapping) and mem.get("kind") in ("gbm", "buffer"),
            "manifest 'memory': expected null or an object with kind 'gbm' or 'buffer', "
            f"got {mem!r}",
        )
        refs = mem.get("arrays", {})
        _need(isinstance(refs, Mapping), f"memory.arrays: expected an object, got {refs!r}")
        for key, ref in refs.items():
            _need(
                isinstance(ref, str) and ref in names,
                f"memory.arrays[{key!r}]: expected an array name, got {ref!r}",
            )

    budget = manifest["budget"]
    _need(isinstance(budget, Mapping), f"manifest 'budget': expected an object, got {budget!r}")
    nbytes = budget.get("bytes")
    _need(
        nbytes is None or (isinstance(nbytes, int) and not isinstance(nbytes, bool) and nbytes > 0),
        f"budget.bytes: expected null or a positive int, got {nbytes!r}",
    )
    _need(
        budget.get("policy") in ("strict", "adapt"),
        f"budget.policy: expected 'strict' or 'adapt', got {budget.get('policy')!r}",
    )


# -- a readable summary of a bundle (``edgecl info``) -------------------------------------


@dataclass(frozen=True)
class BundleReport:
    """What a bundle holds and how many bytes each part takes.

    ``parts`` (bytes as stored): ``features`` (the layer arrays), ``head`` (W and b),
    ``head_graph`` (the ONNX head-update graph, if stored), ``class_memory``.
    ``stored_bytes`` = class memory + head, what the memory budget covers;
    ``headroom_bytes`` = budget - stored bytes (``None`` without a budget).
    """

    path: str
    file_bytes: int
    sha256: str
    creator: str
    input: dict[str, Any]
    embedding: dict[str, Any]
    classes: tuple[str, ...]
    layers: tuple[dict[str, Any], ...]
    memory: dict[str, Any] | None
    parts: dict[str, int]
    stored_bytes: int
    budget_bytes: int | None
    policy: str
    headroom_bytes: int | None
    export: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(getattr(self, k)) for k in self.__dataclass_fields__}
        out["classes"] = list(self.classes)
        out["layers"] = [dict(layer) for layer in self.layers]
        return out

    def __str__(self) -> str:
        lines = [
            f"bundle       {self.path} ({self.file_bytes} bytes, sha256 {self.sha256[:16]}…)",
            f"created by   {self.creator}",
            f"input        {tuple(self.input['shape'])} (H, W, C), x * {self.input['scale']:.6g}"
            f" - mean {self.input['mean']} / std {self.input['std']}",
            f"embedding    D = {self.embedding['bits']} bits ({self.embedding['kind']})",
            f"classes      {len(self.classes)}: {', '.join(self.classes)}",
            "layers",
        ]
        w = max(len(layer["op"]) for layer in self.layers)
        for i, layer in enumerate(self.layers):
            lines.append(
                f"  {i:>3}  {layer['op']:<{w}}  {str(tuple(layer['in_shape'])):>14} -> "
                f"{str(tuple(layer['out_shape'])):<14} weights {layer['weight_bits']:>2} bit"
                f"  {layer['bytes']:>8} bytes  {layer.get('source', '')}"
            )
        if self.memory is not None:
            spec = self.memory.get("spec", {})
            lines.append(f"class memory {self.memory['kind']} {_memory_line(spec)}")
        else:
            lines.append("class memory none")
        lines.append("bytes")
        for part, n in self.parts.items():
            lines.append(f"  {part:<13}{n:>10}")
        lines.append(f"  {'stored':<13}{self.stored_bytes:>10}  (class memory + head)")
        if self.budget_bytes is None:
            lines.append(f"budget       none (policy {self.policy})")
        else:
            lines.append(
                f"budget       {self.budget_bytes} bytes, policy {self.policy}, headroom "
                f"{self.headroom_bytes} bytes"
            )
        if self.export.get("verified"):
            lines.append(
                f"verified     {self.export.get('verified_samples')} samples, max logit "
                f"difference {self.export.get('max_logit_diff'):.3g} (float32 head)"
            )
        if self.export.get("head_bits"):
            lines.append(
                f"head         stored at {self.export['head_bits']} bits; the rounding moved "
                f"the base classes' logits by at most "
                f"{self.export.get('head_rounding_max_logit_change', float('nan')):.3g}"
            )
        return "\n".join(lines)


def _memory_line(spec: Mapping[str, Any]) -> str:
    keys = [k for k in ("components", "bits", "per_class", "n_bits") if k in spec]
    cfg = spec.get("config", {}) if isinstance(spec.get("config"), Mapping) else {}
    keys_cfg = [k for k in ("components", "bits", "per_class", "selection") if k in cfg]
    parts = [f"{k}={spec[k]}" for k in keys] + [f"{k}={cfg[k]}" for k in keys_cfg]
    return ", ".join(parts)


def inspect_bundle(path: str | os.PathLike[str]) -> BundleReport:
    """Read and check a bundle and summarise it (:class:`BundleReport`)."""
    path = Path(path)
    manifest, arrays = read_bundle(path)
    validate_manifest(manifest, arrays)
    data = path.read_bytes()
    layers = []
    for layer in manifest["layers"]:
        refs = [layer[k.rstrip("?")] for k in LAYER_OPS[layer["op"]]["arrays"]]
        nbytes = sum(int(arrays[r].nbytes) for r in refs if r is not None)
        wbits = (
            1
            if layer["op"] in ("conv2d_binary", "dense_binary")
            else (32 if layer["op"] in ("conv2d_float", "dense_float") else 0)
        )
        layers.append(
            {
                "op": layer["op"],
                "source": layer.get("source", ""),
                "in_shape": list(layer["in_shape"]),
                "out_shape": list(layer["out_shape"]),
                "weight_bits": wbits,
                "bytes": nbytes,
            }
        )
    head = manifest["head"]
    parts = {
        "features": sum(layer["bytes"] for layer in layers),
        "head": sum(int(a.nbytes) for a in head_arrays(head, arrays).values()),
    }
    if head.get("onnx") is not None:
        parts["head_graph"] = int(arrays[head["onnx"]].nbytes)
    mem = manifest["memory"]
    parts["class_memory"] = (
        0 if mem is None else sum(int(arrays[r].nbytes) for r in mem["arrays"].values())
    )
    stored = parts["class_memory"] + parts["head"]
    budget = manifest["budget"]
    creator = manifest.get("creator", {})
    return BundleReport(
        path=str(path),
        file_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        creator=f"{creator.get('name', '?')} {creator.get('version', '?')}",
        input=copy.deepcopy(manifest["input"]),
        embedding=copy.deepcopy(manifest["embedding"]),
        classes=tuple(manifest["classes"]),
        layers=tuple(layers),
        memory=None if mem is None else copy.deepcopy(dict(mem)),
        parts=parts,
        stored_bytes=stored,
        budget_bytes=budget["bytes"],
        policy=budget["policy"],
        headroom_bytes=None if budget["bytes"] is None else budget["bytes"] - stored,
        export=copy.deepcopy(manifest.get("export", {})),
    )
