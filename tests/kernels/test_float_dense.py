import numba
import numpy as np
import pytest

from edgecl.kernels import binary_float_dense, binary_float_dense_reference, unpack_bits

SIZES = [1, 63, 64, 65, 127, 1000]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("signed", [False, True])
def test_matches_reference(words, n, batch, signed):
    rng = np.random.default_rng(n + batch)
    x = words(rng, (batch,), n)
    w = rng.standard_normal((n, 11)).astype(np.float32)
    got = binary_float_dense(x, w, n, signed=signed)
    assert got.dtype == np.float32 and got.shape == (batch, 11)
    want = binary_float_dense_reference(x, w, n, signed=signed)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_signed_by_hand(words):
    rng = np.random.default_rng(1)
    x = words(rng, (3,), 70)
    w = rng.standard_normal((70, 4)).astype(np.float32)
    signs = unpack_bits(x, 70).astype(np.float64) * 2 - 1
    np.testing.assert_allclose(binary_float_dense(x, w, 70, signed=True), signs @ w, atol=1e-4)


def test_one_dimensional_input_and_all_bits(words):
    x = np.array([np.uint64(2**64 - 1), np.uint64(1)], np.uint64)  # n = 65, all set
    w = np.arange(65 * 2, dtype=np.float32).reshape(65, 2)
    got = binary_float_dense(x, w, 65)
    assert got.shape == (2,)
    np.testing.assert_allclose(got, w.sum(axis=0))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_threads_equal_single_thread(words):
    rng = np.random.default_rng(2)
    x = words(rng, (9,), 130)
    w = rng.standard_normal((130, 7)).astype(np.float32)
    for signed in (False, True):
        np.testing.assert_array_equal(
            binary_float_dense(x, w, 130, signed=signed, threads=2),
            binary_float_dense(x, w, 130, signed=signed),
        )


def test_bad_input(words):
    rng = np.random.default_rng(3)
    x = words(rng, (2,), 70)
    w = np.zeros((70, 3), np.float32)
    with pytest.raises(TypeError, match="float32 weight"):
        binary_float_dense(x, w.astype(np.float64), 70)
    with pytest.raises(ValueError, match=r"weight of shape \(70, O\)"):
        binary_float_dense(x, w[:69], 70)
    with pytest.raises(ValueError, match="expected 1 words"):
        binary_float_dense(x, w[:64], 64)
    with pytest.raises(TypeError, match="uint64"):
        binary_float_dense(x.view(np.int64), w, 70)
