import numba
import numpy as np
import pytest

from edgecl.kernels import (
    binary_dense,
    binary_dense_reference,
    n_words,
    pack_signs,
)

SIZES = [1, 63, 64, 65, 127, 1000]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("batch", [1, 3, 4, 9])
def test_matches_reference(words, strategy, n, batch):
    rng = np.random.default_rng(n * 31 + batch)
    n_out = 7 if n == 1000 else 13
    x = words(rng, (batch,), n)
    w = words(rng, (n_out,), n)
    got = binary_dense(x, w, n)
    assert got.dtype == np.int32 and got.shape == (batch, n_out)
    np.testing.assert_array_equal(got, binary_dense_reference(x, w, n))


def test_independent_float_product():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((5, 130))
    ws = rng.standard_normal((11, 130))
    want = np.where(xs >= 0, 1, -1) @ np.where(ws >= 0, 1, -1).T
    np.testing.assert_array_equal(binary_dense(pack_signs(xs), pack_signs(ws), 130), want)


def test_one_dimensional_input(words):
    rng = np.random.default_rng(2)
    x = words(rng, (), 65)
    w = words(rng, (6,), 65)
    got = binary_dense(x, w, 65)
    assert got.shape == (6,)
    np.testing.assert_array_equal(got, binary_dense(x[None], w, 65)[0])


def test_non_contiguous_input_is_accepted_and_not_mutated(words):
    rng = np.random.default_rng(3)
    x = words(rng, (8,), 200)[::2]
    w = np.asfortranarray(words(rng, (9,), 200))
    x_before, w_before = x.copy(), w.copy()
    np.testing.assert_array_equal(binary_dense(x, w, 200), binary_dense_reference(x, w, 200))
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("batch", [1, 6])
def test_threads_equal_single_thread(words, batch):
    rng = np.random.default_rng(4)
    x = words(rng, (batch,), 300)
    w = words(rng, (150,), 300)  # several parallel chunks and a ragged last one
    before = numba.get_num_threads()
    np.testing.assert_array_equal(binary_dense(x, w, 300, threads=2), binary_dense(x, w, 300))
    assert numba.get_num_threads() == before


def test_bad_input(words):
    rng = np.random.default_rng(5)
    x = words(rng, (2,), 70)
    w = words(rng, (3,), 70)
    with pytest.raises(TypeError, match="uint64"):
        binary_dense(x.astype(np.int64), w, 70)
    with pytest.raises(TypeError, match="numpy array"):
        binary_dense(x.tolist(), w, 70)
    with pytest.raises(ValueError, match="expected 3 words .* x_words"):
        binary_dense(x, w, 130)
    with pytest.raises(ValueError, match="expected 2 words .* w_words"):
        binary_dense(x, w[:, :1].copy(), 70)
    with pytest.raises(ValueError, match="axes"):
        binary_dense(x[None], w, 70)
    with pytest.raises(ValueError, match="axes"):
        binary_dense(x, w[0], 70)
    with pytest.raises(ValueError, match="n >= 1"):
        binary_dense(x, w, 0)
    with pytest.raises(TypeError, match="integer n"):
        binary_dense(x, w, 70.0)
    with pytest.raises(ValueError, match="tail bits"):
        bad = x.copy()
        bad[0, -1] |= np.uint64(1) << np.uint64(63)
        binary_dense(bad, w, 70)
    with pytest.raises(ValueError, match="threads"):
        binary_dense(x, w, 70, threads=0)
    assert n_words(70) == 2


@pytest.mark.parametrize("n", [1, 65, 127, 1000])
@pytest.mark.parametrize("batch", [1, 3, 4, 9])
@pytest.mark.parametrize("n_out", [5, 8, 33, 77])
def test_prepared_weights_match_reference_on_every_strategy(words, strategy, n, batch, n_out):
    from edgecl.kernels import binary_dense_prepared, prepare_dense

    rng = np.random.default_rng(n * 7 + batch * 3 + n_out)
    x = words(rng, (batch,), n)
    w = words(rng, (n_out,), n)
    prepared = prepare_dense(w, n, strategy=strategy)
    assert (prepared.tiles is not None) == (strategy == "vpopcntdq")
    got = binary_dense_prepared(x, prepared)
    assert got.dtype == np.int32 and got.shape == (batch, n_out)
    np.testing.assert_array_equal(got, binary_dense_reference(x, w, n))
    np.testing.assert_array_equal(binary_dense_prepared(x[0], prepared), got[0])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("strategy_name", ["vpopcntdq", "avx2"])
def test_prepared_weights_threads_equal_single_thread(words, strategy_name):
    from edgecl.kernels import binary_dense_prepared, prepare_dense

    rng = np.random.default_rng(6)
    x = words(rng, (6,), 300)
    w = words(rng, (150,), 300)  # several parallel chunks and a ragged last one
    prepared = prepare_dense(w, 300, strategy=strategy_name)
    np.testing.assert_array_equal(
        binary_dense_prepared(x, prepared, threads=2), binary_dense_reference(x, w, 300)
    )


def test_prepared_weights_are_a_read_only_copy(words):
    from edgecl.kernels import binary_dense_prepared, prepare_dense

    rng = np.random.default_rng(7)
    x = words(rng, (2,), 70)
    w = words(rng, (3,), 70)
    prepared = prepare_dense(w, 70, strategy="vpopcntdq")
    want = binary_dense_reference(x, w, 70)
    w[:] = 0  # the caller's array changes after preparing: the prepared weights do not
    np.testing.assert_array_equal(binary_dense_prepared(x, prepared), want)
    with pytest.raises(ValueError, match="read-only"):
        prepared.tiles[0, 0, 0] = 1


def test_prepared_weights_bad_input(words):
    from edgecl.kernels import binary_dense_prepared, prepare_dense

    rng = np.random.default_rng(8)
    x = words(rng, (2,), 70)
    w = words(rng, (3,), 70)
    with pytest.raises(ValueError, match="expected 3 words .* w_words"):
        prepare_dense(w, 130)
    with pytest.raises(ValueError, match="expected a popcount strategy among"):
        prepare_dense(w, 70, strategy="sse9")
    prepared = prepare_dense(w, 70)
    with pytest.raises(ValueError, match="expected 2 words .* x_words"):
        binary_dense_prepared(x[:, :1].copy(), prepared)
    with pytest.raises(TypeError, match="expected weights from prepare_dense, got ndarray"):
        binary_dense_prepared(x, w)
