"""The one-thread dense + threshold step (kernels/dense_bits.py) gives the reference twin's
bits on every popcount strategy, on odd sizes around the byte lanes' widening, with
offsets and flipped channels; it refuses what it cannot run."""

import zlib

import numpy as np
import pytest

from edgecl.kernels.block import prepare_block
from edgecl.kernels.dense_bits import dense_bits_runner, prepare_dense_bits
from edgecl.kernels.dense_block import binary_dense_threshold_reference
from edgecl.kernels.popcount import STRATEGIES


def _layer(rng, n, o, words, offset):
    w = words(rng, (o,), n)
    t = rng.integers(-n // 4, n // 4 + 1, o).astype(np.int32)
    f = rng.random(o) < 0.4
    t[0], f[0] = n + abs(offset) + 1, False  # a channel that never fires
    blk = prepare_block(w[:, None, None, :], n, t, f, padding="valid", offset=offset)
    return w, t, f, blk


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("n", [1, 63, 64, 65, 31 * 64, 31 * 64 + 1, 2304, 4000])
@pytest.mark.parametrize("o", [1, 63, 64, 65, 130])
def test_every_strategy_equals_twin(words, name, n, o):
    rng = np.random.default_rng(zlib.crc32(f"{name}{n}{o}".encode()))
    offset = int(rng.integers(-5, 6))
    w, t, f, blk = _layer(rng, n, o, words, offset)
    run = dense_bits_runner(prepare_dense_bits(blk), name)
    for batch in (1, 3, 5):
        x = words(rng, (batch,), n)
        want = binary_dense_threshold_reference(x, w, n, t, f, offset=offset)
        got = run(x)
        np.testing.assert_array_equal(got, want)
        assert not (got[:, 0] & np.uint64(1)).any()


def test_all_ones_counts_reach_the_byte_limit(words):
    """Every byte counts 8 at every step: the byte lanes reach 31 * 8 before a widening."""
    n = 64 * 95 + 3
    x = np.full((2, 96), np.uint64(0xFFFFFFFFFFFFFFFF))
    x[:, -1] = np.uint64((1 << 3) - 1)
    w = np.zeros((70, 96), np.uint64)
    t = np.full(70, -n, np.int32)  # the dot is -n (every bit differs): -n fires,
    t[1::2] = -n + 2  # -n + 2 does not (nor would any count the byte lanes wrapped)
    f = np.zeros(70, bool)
    blk = prepare_block(w[:, None, None, :], n, t, f, padding="valid")
    want = binary_dense_threshold_reference(x, w, n, t, f)
    for name in sorted(STRATEGIES):
        np.testing.assert_array_equal(dense_bits_runner(prepare_dense_bits(blk), name)(x), want)
    assert want[0, 0] == np.uint64(0x5555555555555555)


def test_refuses_blocks_and_inputs_it_cannot_run(words):
    rng = np.random.default_rng(3)
    w = words(rng, (5, 3, 3), 64)
    t, f = np.zeros(5, np.int32), np.zeros(5, bool)
    with pytest.raises(ValueError, match="expected a 1x1 block with repeat 1"):
        prepare_dense_bits(prepare_block(w, 64, t, f))
    blk = prepare_block(w[:, :1, :1, :], 64, t, f, padding="valid")
    run = dense_bits_runner(prepare_dense_bits(blk))
    with pytest.raises(ValueError, match=r"expected \(B, 1\) uint64 words, got int64"):
        run(np.zeros((1, 1), np.int64))
    with pytest.raises(ValueError, match=r"expected \(B, 1\) uint64 words"):
        run(np.zeros((1, 2), np.uint64))
