"""Every popcount strategy (vpopcntdq, avx512bw, avx2, neon, scalar) gives the reference
twins' results bit for bit, on odd sizes, through the explicit ``strategy`` of the cores;
the strategy is chosen from Numba's target without compiling anything."""

import os
import platform
import subprocess
import sys
import zlib

import numba
import numpy as np
import pytest

from edgecl.kernels import (
    binary_conv2d_reference,
    binary_conv_threshold_pool_reference,
    binary_dense_reference,
    n_words,
    pack_bits,
    tail_mask,
)
from edgecl.kernels.block import FAST_WORDS, TAIL_WORDS, prepare_block, run_block_strategy
from edgecl.kernels.conv import _check_conv, conv_words
from edgecl.kernels.dense import dense_words
from edgecl.kernels.fused_bytes import count_ranges
from edgecl.kernels.popcount import (
    STRATEGIES,
    NumbaTarget,
    choose_strategy,
    get_strategy,
)

NAMES = sorted(STRATEGIES)
SIZES = [1, 63, 64, 65, 127, 1000]
THREADS = [1, 2] if numba.config.NUMBA_NUM_THREADS >= 2 else [1]


def _target(arch, *features):
    return NumbaTarget("cpu", frozenset(features), arch, False)


def test_choose_strategy_from_the_target_features():
    assert choose_strategy(_target("x86_64", "avx2", "avx512bw", "avx512vpopcntdq")) == "vpopcntdq"
    assert choose_strategy(_target("x86_64", "avx2", "avx512bw")) == "avx512bw"
    assert choose_strategy(_target("x86_64", "avx2", "popcnt")) == "avx2"
    assert choose_strategy(_target("x86_64", "sse4.2", "popcnt")) == "scalar"
    assert choose_strategy(_target("aarch64", "neon")) == "neon"
    assert choose_strategy(_target("riscv64")) == "scalar"


def test_get_strategy_by_name_and_refuses_unknown_names():
    assert get_strategy("avx2") is STRATEGIES["avx2"]
    assert get_strategy(STRATEGIES["neon"]) is STRATEGIES["neon"]
    with pytest.raises(ValueError, match="expected a popcount strategy among"):
        get_strategy("sse9")


def test_tokens_carry_distinct_modes():
    tokens = {len(s.token) for s in STRATEGIES.values()}
    assert len(tokens) == len(STRATEGIES)


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"),
    reason="x86-64 only: the overrides name an x86 CPU (haswell) and x86 feature flags",
)
@pytest.mark.parametrize(
    "features,want",
    [
        ("+avx2,+popcnt,+sse4.2,-avx512f,-avx512bw,-avx512vpopcntdq", "avx2"),
        ("+avx2,+popcnt,+avx512f,+avx512bw,+avx512vpopcntdq", "vpopcntdq"),
    ],
)
def test_default_strategy_follows_numba_cpu_overrides(tmp_path, features, want):
    code = (
        "import edgecl.kernels.popcount as p, edgecl.kernels.dense as d\n"
        "assert not d._dense_serial.signatures\n"
        "print(p.DEFAULT_STRATEGY.name)\n"
    )
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=features)
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == want


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [*SIZES, 19205])
def test_dense_every_strategy(words, name, n):
    rng = np.random.default_rng(zlib.crc32(f"{name}{n}".encode()))
    w = words(rng, (13,), n)  # 3 tiles of 4 rows and one leftover row
    for batch in (1, 2, 3, 5):
        x = words(rng, (batch,), n)
        want = binary_dense_reference(x, w, n)
        for threads in THREADS:
            np.testing.assert_array_equal(dense_words(x, w, n, threads, name), want)


@pytest.mark.parametrize("name", NAMES)
def test_byte_accumulators_at_their_limit(name):
    # all-ones against all-zeros: every byte counts 8 at every step, so the byte lanes
    # reach 31 * 8 = 248 before each widening; 33 vectors of 8 words plus a tail word
    n = 64 * 8 * 33 + 7
    x = pack_bits(np.ones((3, n), np.uint8))
    w = pack_bits(np.zeros((5, n), np.uint8))
    np.testing.assert_array_equal(dense_words(x, w, n, 1, name), np.full((3, 5), -n, np.int32))
    np.testing.assert_array_equal(dense_words(x, x[:1], n, 1, name), np.full((3, 1), n, np.int32))


CONV_CASES = [
    # (N, H, W, C, O, k, stride, pad_value)
    (1, 5, 5, 1, 3, 3, 1, 1),
    (2, 6, 7, 63, 5, 3, 2, 0),
    (1, 5, 6, 64, 9, 1, 1, 1),
    (1, 4, 5, 65, 13, 2, 1, 0),
    (1, 5, 5, 127, 6, 3, 1, 1),
    (1, 4, 4, 1000, 4, 3, 1, 0),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_every_strategy(words, name, case):
    N, H, W, C, O, k, stride, pad_value = case
    rng = np.random.default_rng(zlib.crc32(repr((name, case)).encode()))
    x = words(rng, (N, H, W), C)
    w = words(rng, (O, k, k), C)
    checked = _check_conv(x, w, C, stride, "same", pad_value)
    want = binary_conv2d_reference(x, w, C, stride=stride, pad_value=pad_value)
    for threads in THREADS:
        got = conv_words(*checked[:2], C, *checked[3:], pad_value, threads, name)
        np.testing.assert_array_equal(got, want)


ASYM_CONV_CASES = [
    # (N, H, W, C, O, kh, kw, stride, (top, bottom, left, right), pad_value) on odd sizes:
    # TensorFlow's 'same' for strides 2 on an even input (the odd pad pixel bottom / right),
    # and skewed pads; short patches (the output-vectorised GEMM under vpopcntdq), long ones
    # (the byte GEMM's flushes), O off every tile size
    (1, 6, 6, 1, 3, 3, 3, 2, (0, 1, 0, 1), 1),
    (2, 8, 7, 63, 5, 3, 3, 2, (0, 1, 1, 1), 0),
    (1, 7, 5, 65, 9, 3, 3, 1, (0, 2, 2, 0), 0),
    (1, 5, 6, 127, 13, 2, 2, 1, (0, 1, 1, 0), 1),
    (2, 5, 7, 3, 70, 5, 3, 2, (1, 2, 0, 1), 0),
    (1, 6, 5, 1000, 7, 3, 3, 2, (2, 0, 1, 2), 1),
    (1, 9, 9, 300, 17, 3, 3, 1, (1, 0, 0, 1), 0),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ASYM_CONV_CASES)
def test_conv_every_strategy_asymmetric_pads(words, name, case):
    N, H, W, C, O, kh, kw, stride, pads, pad_value = case
    rng = np.random.default_rng(zlib.crc32(repr(("asym", name, case)).encode()))
    x = words(rng, (N, H, W), C)
    w = words(rng, (O, kh, kw), C)
    checked = _check_conv(x, w, C, stride, pads, pad_value)
    assert checked[4] == pads
    want = binary_conv2d_reference(x, w, C, stride=stride, padding=pads, pad_value=pad_value)
    for threads in THREADS:
        got = conv_words(*checked[:2], C, *checked[3:], pad_value, threads, name)
        np.testing.assert_array_equal(got, want)


FUSED_CASES = [
    # (N, H, W, C, O, k, pad_value, repeat, pool): the one-padded fast path (patches of
    # at most 18 words, repeat 1) and the per-pixel path (zero padding, repeat, deep patches);
    # with vpopcntdq every one-padded repeat-1 case runs the row GEMM (kernels/block_gemm.py)
    (1, 5, 5, 1, 3, 3, 1, 1, 0),
    (1, 8, 9, 65, 70, 3, 1, 1, 3),  # a 3x3 pool window, stride 2
    (2, 6, 7, 63, 65, 3, 1, 1, 2),
    (1, 6, 6, 64, 64, 1, 1, 1, 0),
    (1, 6, 6, 130, 200, 3, 1, 1, 2),
    (2, 5, 5, 65, 33, 2, 0, 1, 0),
    (1, 7, 5, 127, 63, 3, 0, 3, 2),
    (1, 4, 4, 1000, 37, 3, 1, 1, 0),
    (1, 5, 5, 256, 70, 3, 0, 1, 3),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_block_every_strategy(words, name, case):
    N, H, W, C, O, k, pad_value, repeat, pool = case
    rng = np.random.default_rng(zlib.crc32(repr((name, case)).encode()))
    x = words(rng, (N, H, W), C)
    w = words(rng, (O, k, k), C)
    n_bits = O * repeat
    fan_in = k * k * C
    t = rng.integers(-fan_in // 8, fan_in // 8 + 1, n_bits).astype(np.int32)
    f = rng.random(n_bits) < 0.4
    opts = dict(pad_value=pad_value, repeat=repeat, pool=pool, pool_stride=2 if pool else 1)
    blk = prepare_block(w, C, t, f, **opts)
    want = binary_conv_threshold_pool_reference(x, w, C, t, f, **opts)
    assert want.shape[-1] == n_words(n_bits)
    for threads in THREADS:
        got = run_block_strategy(x, blk, threads, name)
        np.testing.assert_array_equal(got, want)
        assert not np.any(got[..., -1] & ~tail_mask(n_bits))


@pytest.mark.parametrize("name", NAMES)
def test_fused_block_byte_accumulators_at_their_limit(name):
    # all-ones input against all-zero weights over 9 taps of 16 words: 144 steps, so the
    # per-pixel byte accumulators are widened 4 times, every byte at 248 before each
    C, O = 1000, 37
    x = pack_bits(np.ones((1, 4, 4, C), np.uint8))
    w = pack_bits(np.zeros((O, 3, 3, C), np.uint8))
    t = np.full(O, -9 * C, np.int32)  # bit = dot >= -9C: true exactly when dot == -9C
    t[::2] = -9 * C + 1  # false everywhere
    f = np.zeros(O, bool)
    blk = prepare_block(w, C, t, f, padding="valid")
    want = binary_conv_threshold_pool_reference(x, w, C, t, f, padding="valid")
    np.testing.assert_array_equal(run_block_strategy(x, blk, 1, name), want)
    np.testing.assert_array_equal(want, np.uint64(sum(1 << q for q in range(1, O, 2))))


ASYM_FUSED_CASES = [
    # (N, H, W, C, O, kh, kw, stride, pads, pad_value, repeat, pool) on odd sizes: the
    # one-padded fast path (pad 1, repeat 1, at most FAST_WORDS patch words) and the
    # per-pixel path (zero padding, repeat > 1, deep patches; channel tails off the byte
    # vector width)
    (1, 6, 6, 1, 3, 3, 3, 2, (0, 1, 0, 1), 1, 1, 0),
    (2, 8, 7, 63, 65, 3, 3, 2, (0, 1, 1, 1), 1, 1, 2),
    (1, 7, 9, 65, 33, 3, 3, 1, (0, 2, 2, 0), 1, 1, 2),
    (1, 8, 8, 130, 70, 3, 3, 2, (0, 1, 0, 1), 1, 1, 0),
    (2, 7, 6, 63, 37, 3, 3, 2, (0, 1, 1, 0), 0, 1, 2),
    (1, 7, 5, 127, 63, 3, 2, 1, (1, 0, 0, 1), 0, 3, 2),
    (1, 6, 5, 1000, 37, 3, 3, 2, (2, 0, 1, 2), 1, 1, 0),
    (1, 9, 9, 256, 70, 3, 3, 1, (0, 1, 0, 1), 0, 1, 3),
    (1, 9, 8, 130, 37, 3, 2, 1, (1, 1, 0, 2), 1, 1, 3),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ASYM_FUSED_CASES)
def test_fused_block_every_strategy_asymmetric_pads(words, name, case):
    N, H, W, C, O, kh, kw, stride, pads, pad_value, repeat, pool = case
    rng = np.random.default_rng(zlib.crc32(repr(("asym", name, case)).encode()))
    x = words(rng, (N, H, W), C)
    w = words(rng, (O, kh, kw), C)
    n_bits = O * repeat
    fan_in = kh * kw * C
    t = rng.integers(-fan_in // 8, fan_in // 8 + 1, n_bits).astype(np.int32)
    f = rng.random(n_bits) < 0.4
    opts = dict(stride=stride, padding=pads, pad_value=pad_value, repeat=repeat)
    opts.update(pool=pool, pool_stride=2 if pool else 1)
    blk = prepare_block(w, C, t, f, **opts)
    assert blk.pads == pads
    fast = pad_value == 1 and repeat == 1 and kh * kw * n_words(C) <= FAST_WORDS
    assert (blk.fast is not None) == fast  # both paths are covered
    want = binary_conv_threshold_pool_reference(x, w, C, t, f, **opts)
    for threads in THREADS:
        got = run_block_strategy(x, blk, threads, name)
        np.testing.assert_array_equal(got, want)
        assert not np.any(got[..., -1] & ~tail_mask(n_bits))


@pytest.mark.parametrize("n_bits", [1, 2, 9, 64, 577])
def test_count_ranges_equal_the_threshold_on_every_count(n_bits):
    # the byte cores' fast path thresholds by a count range: the same bit as
    # sgn * (n - 2c) >= t for every count c, every sign and thresholds past both ends
    t = np.arange(-n_bits - 3, n_bits + 4, dtype=np.int64)
    sgn = np.repeat(np.array([1, -1], np.int64), len(t))
    sthr = np.concatenate([t, t, [np.iinfo(np.int64).max]])
    sgn = np.append(sgn, 1)
    lo, width = count_ranges(sgn, sthr, n_bits)
    c = np.arange(n_bits + 1, dtype=np.int64)[:, None]
    want = sgn * (n_bits - 2 * c) >= sthr
    got = (c.astype(np.uint64) - lo) <= width  # uint64 wrap-around, as the kernel
    np.testing.assert_array_equal(got, want)
    assert not got[:, -1].any()  # the padded outputs' threshold: never set


FAST_EDGE_CASES = [
    # (H, W, C, O, stride, pads, pool) through the one-padded fast path, thresholds over
    # the whole dot range and past it (always / never set, every boundary parity)
    (5, 7, 1, 3, 1, (1, 1, 1, 1), 0),
    (9, 8, 63, 65, 2, (0, 1, 1, 0), 2),
    (7, 7, 64, 130, 1, (1, 1, 1, 1), 2),
    (8, 5, 65, 37, 2, (1, 0, 0, 1), 0),
    (6, 9, 127, 200, 1, (0, 2, 2, 0), 3),
    (6, 5, 250, 70, 1, (1, 1, 1, 1), 2),  # 36 patch words: the byte lanes widened once
    (5, 6, 256, 65, 2, (0, 1, 1, 0), 0),
    (5, 6, 500, 70, 1, (1, 1, 1, 1), 2),  # 72 patch words: widened twice, pooled pairs
    (5, 5, 450, 33, 1, (1, 1, 1, 1), 0),  # 63 words, an odd row of patches
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", FAST_EDGE_CASES)
def test_fused_fast_path_every_threshold(words, name, case):
    H, W, C, O, stride, pads, pool = case
    rng = np.random.default_rng(zlib.crc32(repr(("edge", name, case)).encode()))
    x = words(rng, (2, H, W), C)
    w = words(rng, (O, 3, 3), C)
    fan_in = 9 * C
    t = rng.integers(-fan_in - 3, fan_in + 4, O).astype(np.int32)
    t[:4] = [-fan_in - 1, fan_in + 1, -fan_in, fan_in][: min(O, 4)]
    f = rng.random(O) < 0.5
    opts = dict(stride=stride, padding=pads, pool=pool, pool_stride=2 if pool else 1)
    blk = prepare_block(w, C, t, f, **opts)
    assert blk.fast is not None
    # the word cores' layout only where they take the fast path (at most 2 * TAIL_WORDS)
    assert (blk.fast[0] is None) == (9 * n_words(C) > 2 * TAIL_WORDS)
    want = binary_conv_threshold_pool_reference(x, w, C, t, f, **opts)
    for threads in THREADS:
        np.testing.assert_array_equal(run_block_strategy(x, blk, threads, name), want)


@pytest.mark.parametrize("name", ["avx2", "neon", "avx512bw"])
@pytest.mark.parametrize("case", FAST_EDGE_CASES)
def test_nibble_weights_every_byte_strategy(words, name, case, monkeypatch):
    """The byte cores' nibble weights (taken where the target has no GFNI) give the same
    bits as the reference twin, whatever this CPU has."""
    import edgecl.kernels.block as block_module

    monkeypatch.setattr(block_module, "numba_target", lambda: _target("x86_64", "avx2"))
    H, W, C, O, stride, pads, pool = case
    rng = np.random.default_rng(zlib.crc32(repr(("nibbles", name, case)).encode()))
    x = words(rng, (2, H, W), C)
    w = words(rng, (O, 3, 3), C)
    fan_in = 9 * C
    t = rng.integers(-fan_in - 3, fan_in + 4, O).astype(np.int32)
    f = rng.random(O) < 0.5
    opts = dict(stride=stride, padding=pads, pool=pool, pool_stride=2 if pool else 1)
    blk = prepare_block(w, C, t, f, **opts)
    fits = 2 * blk.fast[4].nbytes <= block_module.NIBBLE_BYTES and 9 * n_words(C) <= 31
    assert (blk.fast[5] is not None) == fits  # the nibble weights, where they fit L1
    want = binary_conv_threshold_pool_reference(x, w, C, t, f, **opts)
    for threads in THREADS:
        np.testing.assert_array_equal(run_block_strategy(x, blk, threads, name), want)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c", [250, 256, 500])
def test_fused_fast_path_counts_past_the_byte_limit(name, c):
    """All-ones images (and pads): against all-zero weights (flipped channels) every byte
    of every patch word counts 8, against all-one weights (plain channels, whose weights
    the byte cores invert) too, so 36 (72) patch words reach 288 (576) in a byte lane
    unless it is widened on the way. Every channel fires at the extreme count only."""
    n = 9 * c
    x = pack_bits(np.ones((1, 4, 4, c), np.uint8))
    w = pack_bits(np.ones((4, 3, 3, c), np.uint8))
    w[:2] = 0
    t = np.array([-n, -n + 2, n, n - 2], np.int32)
    f = np.array([True, True, False, False])
    blk = prepare_block(w, c, t, f)  # one-padded: the pads are all-ones pixels too
    assert blk.fast is not None
    want = binary_conv_threshold_pool_reference(x, w, c, t, f)
    np.testing.assert_array_equal(want[..., 0], np.uint64(0b1111))
    np.testing.assert_array_equal(run_block_strategy(x, blk, 1, name), want)
