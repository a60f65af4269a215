"""The device bundle format: one ``.ecl`` zip of ``manifest.json`` and ``.npy`` arrays.

Torch-free. :mod:`~edgecl.bundle.container` reads and writes the zip (limits, checksums,
one atomic write); :mod:`~edgecl.bundle.manifest` checks what a device runtime needs;
:mod:`~edgecl.bundle.layers` the layer program; :mod:`~edgecl.bundle.head` the stored
precision of the head; :mod:`~edgecl.bundle.inspect` the summary ``edgecl info`` prints.
"""

from edgecl.bundle.container import (
    ALLOWED_DTYPES,
    ARRAY_SUFFIX,
    FORMAT_NAME,
    MANIFEST_NAME,
    MAX_COMPRESSION_RATIO,
    MAX_MANIFEST_BYTES,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    SCHEMA_VERSION,
    BundleInfo,
    bundle_bytes,
    read_bundle,
    write_atomic,
    write_bundle,
)
from edgecl.bundle.head import (
    HEAD_BITS,
    decode_head,
    encode_head,
    head_arrays,
    head_bytes_per_class,
    head_weight,
    round_head,
    scale_name,
)
from edgecl.bundle.inspect import BundleReport, inspect_bundle
from edgecl.bundle.manifest import Manifest, validate_manifest
from edgecl.bundle.specs import (
    MAX_CLASS_NAME,
    MAX_GBM_WEIGHT,
    MAX_HEAD_BATCH_SIZE,
    MAX_HEAD_EPOCHS,
    MAX_HEAD_LR,
    MAX_HEAD_WEIGHT_DECAY,
    MAX_INPUT_VALUES,
    BudgetSpec,
    EmbeddingSpec,
    HeadRefs,
    HeadSpec,
    InputSpec,
    MemorySpec,
)

__all__ = [
    "ALLOWED_DTYPES",
    "ARRAY_SUFFIX",
    "FORMAT_NAME",
    "HEAD_BITS",
    "MANIFEST_NAME",
    "MAX_COMPRESSION_RATIO",
    "MAX_MANIFEST_BYTES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "SCHEMA_VERSION",
    "MAX_CLASS_NAME",
    "MAX_GBM_WEIGHT",
    "MAX_HEAD_BATCH_SIZE",
    "MAX_HEAD_EPOCHS",
    "MAX_HEAD_LR",
    "MAX_HEAD_WEIGHT_DECAY",
    "MAX_INPUT_VALUES",
    "BudgetSpec",
    "BundleInfo",
    "BundleReport",
    "EmbeddingSpec",
    "HeadRefs",
    "HeadSpec",
    "InputSpec",
    "Manifest",
    "MemorySpec",
    "bundle_bytes",
    "decode_head",
    "encode_head",
    "head_arrays",
    "head_bytes_per_class",
    "head_weight",
    "inspect_bundle",
    "read_bundle",
    "round_head",
    "scale_name",
    "validate_manifest",
    "write_atomic",
    "write_bundle",
]
