import numpy as np
import pytest

from edgecl.kernels import (
    maxpool2d,
    maxpool2d_reference,
    maxpool_bits,
    maxpool_bits_reference,
    pack_signs,
    tail_mask,
    unpack_bits,
)

SHAPES = [(1, 4, 4), (2, 5, 7), (3, 8, 6), (1, 2, 2)]
POOLS = [(2, 2), (3, 2), (2, 1), (3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("c", [1, 63, 64, 65, 127, 1000])
@pytest.mark.parametrize("pool", POOLS)
def test_bits_match_reference_and_tail_zero(words, shape, c, pool):
    size, stride = pool
    if min(shape[1:]) < size:
        pytest.skip("window larger than the input")
    rng = np.random.default_rng(c + size)
    x = words(rng, shape, c)
    got = maxpool_bits(x, size=size, stride=stride)
    np.testing.assert_array_equal(got, maxpool_bits_reference(x, size=size, stride=stride))
    assert not np.any(got[..., -1] & ~tail_mask(c))


def test_bits_equal_max_of_signs():
    rng = np.random.default_rng(0)
    xf = rng.standard_normal((2, 7, 5, 70)).astype(np.float32)
    got = unpack_bits(maxpool_bits(pack_signs(xf)), 70)
    want = unpack_bits(pack_signs(maxpool2d(xf)), 70)
    assert got.shape == (2, 3, 2, 70)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape", [(1, 4, 4, 1), (2, 5, 7, 3), (1, 9, 8, 65)])
@pytest.mark.parametrize("pool", POOLS)
def test_float_matches_reference(shape, pool):
    size, stride = pool
    rng = np.random.default_rng(shape[-1] + size)
    x = rng.standard_normal(shape).astype(np.float32)
    got = maxpool2d(x, size=size, stride=stride)
    np.testing.assert_array_equal(got, maxpool2d_reference(x, size=size, stride=stride))


def test_float_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 9, 5)).astype(np.float32)
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 2, 2)
    np.testing.assert_array_equal(maxpool2d(x), want.permute(0, 2, 3, 1).numpy())


def test_bad_input(words):
    rng = np.random.default_rng(2)
    x = words(rng, (1, 4, 4), 10)
    with pytest.raises(TypeError, match="uint64"):
        maxpool_bits(x.astype(np.int64))
    with pytest.raises(ValueError, match="axes"):
        maxpool_bits(x[0])
    with pytest.raises(ValueError, match="at least"):
        maxpool_bits(x, size=5)
    with pytest.raises(ValueError, match="stride"):
        maxpool_bits(x, stride=0)
    with pytest.raises(TypeError, match="float32"):
        maxpool2d(np.zeros((1, 4, 4, 2)))
