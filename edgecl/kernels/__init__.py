"""Bit-packed kernels, NumPy and Numba only (never torch).

Plain functions on arrays; each fast kernel has a NumPy ``_reference`` twin.
The bit convention lives in :mod:`edgecl.kernels.bits`. Nothing compiles at import:
each Numba core compiles (or loads from Numba's cache) on its first call.
"""

from edgecl.kernels.bits import (
    WORD_BITS,
    WORD_DTYPE,
    n_words,
    pack_bits,
    pack_signs,
    signs_from_bits,
    tail_mask,
    unpack_bits,
)
from edgecl.kernels.bmm import (
    bmm_em_stats,
    bmm_em_stats_reference,
    bmm_log_likelihood,
    bmm_log_likelihood_reference,
    bmm_responsibilities,
    bmm_responsibilities_reference,
    hamming_distances,
    hamming_distances_reference,
)
from edgecl.kernels.conv import binary_conv2d, binary_conv2d_reference
from edgecl.kernels.dense import binary_dense, binary_dense_reference
from edgecl.kernels.float_dense import binary_float_dense, binary_float_dense_reference
from edgecl.kernels.fused import (
    binary_conv_threshold_pool,
    binary_conv_threshold_pool_reference,
    binary_dense_threshold,
    binary_dense_threshold_reference,
)
from edgecl.kernels.head import softmax_head_step, softmax_head_step_reference
from edgecl.kernels.pool import maxpool2d, maxpool2d_reference, maxpool_bits, maxpool_bits_reference
from edgecl.kernels.sampling import (
    PROB_ONE,
    sample_bernoulli_words,
    sample_bernoulli_words_reference,
)
from edgecl.kernels.threshold import (
    threshold,
    threshold_float,
    threshold_float_reference,
    threshold_reference,
)

__all__ = [
    "bmm_em_stats",
    "bmm_em_stats_reference",
    "bmm_log_likelihood",
    "bmm_log_likelihood_reference",
    "bmm_responsibilities",
    "bmm_responsibilities_reference",
    "hamming_distances",
    "hamming_distances_reference",
    "PROB_ONE",
    "sample_bernoulli_words",
    "sample_bernoulli_words_reference",
    "WORD_BITS",
    "WORD_DTYPE",
    "binary_conv2d",
    "binary_conv2d_reference",
    "binary_conv_threshold_pool",
    "binary_conv_threshold_pool_reference",
    "binary_dense",
    "binary_dense_reference",
    "binary_dense_threshold",
    "binary_dense_threshold_reference",
    "binary_float_dense",
    "binary_float_dense_reference",
    "maxpool2d",
    "maxpool2d_reference",
    "maxpool_bits",
    "maxpool_bits_reference",
    "n_words",
    "pack_bits",
    "pack_signs",
    "signs_from_bits",
    "softmax_head_step",
    "softmax_head_step_reference",
    "tail_mask",
    "threshold",
    "threshold_float",
    "threshold_float_reference",
    "threshold_reference",
    "unpack_bits",
]
