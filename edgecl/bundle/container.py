"""The bundle container: one ``.ecl`` zip of ``manifest.json`` and ``.npy`` arrays.

Torch-free. The layout (schema version 1):

- ``manifest.json``: a JSON object with ``format`` (``"edgecl-bundle"``),
  ``schema_version`` (1), ``creator`` (name and version of the writer) and
  ``arrays``: for every array member, its ``sha256`` (of the member's bytes),
  ``shape`` and ``dtype`` (NumPy's ``dtype.str``, little-endian). The rest of
  the manifest (layers, input spec, classes, memory, head, budget) is checked by
  :func:`edgecl.bundle.manifest.validate_manifest`.
- ``<name>.npy`` for every array ``name`` in the manifest; plain ``.npy`` files,
  never pickled.

Writing is deterministic (members in sorted order with fixed timestamps, stored
uncompressed except the learning graphs, deflated at level 6; JSON with sorted keys), so
the same content gives the same bytes, and atomic (:func:`write_atomic`: a temporary
file in the same folder, flushed, fsynced and renamed over the target). Reading checks
every name, size, checksum, shape and dtype and raises :class:`~edgecl.errors.BundleError`
saying what was expected and what came.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edgecl.errors import BundleError

FORMAT_NAME = "edgecl-bundle"
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
ARRAY_SUFFIX = ".npy"

#: Largest array member a reader accepts by default (bytes, uncompressed).
MAX_MEMBER_BYTES = 256 * 1024 * 1024
#: Largest sum of the array members' declared data bytes a reader accepts by default.
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
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


def _zip_info(name: str, *, deflate: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
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

    # The learning graphs' members are deflated: the embed graph holds F's binary weights as
    # float32 +-1 initializers (6.2 MB -> 0.37 MB for the demo's network); every other
    # array is stored as it is (packed bits do not compress).
    graphs = manifest.get("graphs")
    deflated = {
        ref + ARRAY_SUFFIX for ref in (graphs.values() if isinstance(graphs, Mapping) else ())
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=False) as zf:
        zf.writestr(_zip_info(MANIFEST_NAME), _manifest_bytes(full))
        for member in sorted(members):
            info = _zip_info(member, deflate=member in deflated)
            zf.writestr(info, members[member], compresslevel=6 if member in deflated else None)
    return buf.getvalue()


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | Callable[[BinaryIO], None],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``data`` (bytes, or a function that writes into the open binary file) to
    ``path`` atomically: a temporary file in the same folder, flushed,
    fsynced, renamed over ``path``, then the folder fsynced. A crash at any point leaves a
    previous file at ``path`` intact (at worst a hidden ``.<name>.*.tmp`` beside it).

    Raises ``FileNotFoundError`` if the folder does not exist and ``FileExistsError`` if
    ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"expected an existing folder for {path}, got none at {folder}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return path


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
    try:
        write_atomic(path, data, overwrite=overwrite)
    except (FileNotFoundError, FileExistsError) as exc:
        raise BundleError(str(exc)) from exc
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


def _check_array_table(
    table: object, max_member_bytes: int, max_total_bytes: int
) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise BundleError(f"manifest 'arrays': expected an object, got {type(table).__name__}")
    if len(table) > MAX_MEMBERS:
        raise BundleError(f"expected at most {MAX_MEMBERS} arrays, got {len(table)}")
    total = 0
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
        total += nbytes
    if total > max_total_bytes:
        raise BundleError(
            f"expected arrays of at most {max_total_bytes} bytes in all, got a declared {total}"
        )
    return table


def read_bundle(
    path: str | os.PathLike[str],
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_BUNDLE_BYTES,
    check: Callable[[dict[str, Any]], object] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a bundle; return ``(manifest, arrays)``.

    Checks the format name and schema version, member names (plain names only, no
    duplicates), member sizes (at most ``max_member_bytes`` each and ``max_total_bytes``
    declared in all, no decompression bombs), every SHA-256, and every ``.npy`` header's
    shape and dtype against the manifest and the member's size before any array is made,
    and that the members are exactly the manifest's arrays. The manifest's JSON may hold
    no NaN or infinite number. ``check`` (e.g. :func:`edgecl.bundle.validate_manifest`)
    is called with the manifest, its ``arrays`` table included, before any array member
    is read. Anything wrong raises :class:`BundleError`.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"expected a bundle file at {path}, got none")
    try:
        with zipfile.ZipFile(path, "r") as zf:
            return _read_open_zip(zf, path, max_member_bytes, max_total_bytes, check)
    except BundleError:
        raise
    except _ZIP_ERRORS as exc:
        raise BundleError(
            f"{path}: expected an edgecl bundle (zip), got a corrupt file: {exc}"
        ) from exc


def _refuse_constant(name: str) -> float:
    raise ValueError(f"a non-finite number {name} (refused)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"a number out of float range {text[:40]} (refused)")
    return value


def parse_manifest(raw: bytes) -> Any:
    """The manifest's JSON, refusing NaN, Infinity and numbers beyond float range
    (``ValueError``; the writer never writes them)."""
    return json.loads(
        raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
    )


def _npy_array(data: bytes, spec: Mapping[str, Any], what: str) -> np.ndarray:
    """The array of one ``.npy`` member, its header checked against the manifest's
    ``spec`` and the member's size before anything is allocated."""
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"format version {version}, expected 1.0 or 2.0")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise BundleError(f"{what}: expected a .npy array, got: {exc}") from exc
    if dtype.str != spec["dtype"]:
        raise BundleError(f"{what}: expected dtype {spec['dtype']}, got {dtype.str}")
    if list(shape) != spec["shape"]:
        raise BundleError(f"{what}: expected shape {tuple(spec['shape'])}, got {shape}")
    if fortran:
        raise BundleError(f"{what}: expected a C-order array, got a Fortran-order one")
    count = math.prod(shape)
    offset = buf.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise BundleError(
            f"{what}: expected {count * dtype.itemsize} data bytes after the .npy header, "
            f"got {len(data) - offset}"
        )
    return np.frombuffer(data, dtype, count=count, offset=offset).reshape(shape).copy()


def _read_open_zip(
    zf: zipfile.ZipFile,
    path: Path,
    max_member_bytes: int,
    max_total_bytes: int,
    check: Callable[[dict[str, Any]], object] | None,
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
        manifest = parse_manifest(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(f"{path}: expected a JSON manifest, got invalid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object manifest, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT_NAME:
        raise BundleError(
            f"{path}: expected format {FORMAT_NAME!r}, got {manifest.get('format')!r:.200}"
        )
    version = manifest.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise BundleError(f"{path}: expected schema_version {SCHEMA_VERSION}, got {version!r:.200}")
    table = _check_array_table(manifest.get("arrays"), max_member_bytes, max_total_bytes)

    expected = {n + ARRAY_SUFFIX for n in table}
    present = set(by_name) - {MANIFEST_NAME}
    if present - expected:
        raise BundleError(f"{path}: unexpected members {sorted(present - expected)}")
    if expected - present:
        raise BundleError(f"{path}: missing members {sorted(expected - present)}")
    if check is not None:
        check(manifest)

    arrays: dict[str, np.ndarray] = {}
    for name in sorted(table):
        spec = table[name]
        what = f"{path}: array {name!r}"
        nbytes = math.prod(spec["shape"]) * np.dtype(spec["dtype"]).itemsize
        data = _read_member(zf, by_name[name + ARRAY_SUFFIX], nbytes + _NPY_HEADER_SLACK, what)
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec["sha256"]:
            raise BundleError(f"{what}: expected sha256 {spec['sha256']}, got {digest}")
        arrays[name] = _npy_array(data, spec, what)
    return manifest, arrays
