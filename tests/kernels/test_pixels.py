"""uint8 pixels through the normalisation table: the fast lookup, its NumPy twin and the
spec's float32 arithmetic agree bit for bit; the runtime's uint8 path embeds as its float
path does."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.bundle.specs import InputSpec
from edgecl.data import sample_dir
from edgecl.device import Runtime
from edgecl.errors import InvalidTypeError, InvalidValueError
from edgecl.kernels.pixels import normalize_uint8, normalize_uint8_reference


@pytest.mark.parametrize(
    ("shape", "mean", "std"),
    [
        ((3, 5, 7, 1), (0.1307,), (0.3081,)),
        ((2, 9, 11, 3), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ((1, 1, 1, 2), (-1.5, 3.25), (1e-3, 7.0)),
    ],
)
def test_lookup_equals_the_float32_arithmetic(shape, mean, std):
    spec = InputSpec(shape=shape[1:], scale=1 / 255, mean=mean, std=std)
    x = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    x.reshape(-1)[:256] = np.arange(256)[: x.size]  # every byte value where it fits
    want = spec.normalize(x.astype(np.float32))
    table = spec.normalize_table()
    for got in (normalize_uint8(x, table), normalize_uint8_reference(x, table)):
        assert got.dtype == np.float32 and got.shape == x.shape
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_bad_arguments_are_refused():
    table = np.zeros((256, 3), np.float32)
    with pytest.raises(InvalidTypeError):
        normalize_uint8(np.zeros((2, 3), np.float32), table)
    with pytest.raises(InvalidTypeError):
        normalize_uint8(np.zeros((2, 3), np.uint8), table.astype(np.float64))
    with pytest.raises(InvalidValueError):
        normalize_uint8(np.zeros((2, 4), np.uint8), table)
    with pytest.raises(InvalidValueError):
        normalize_uint8(np.zeros((2, 3), np.uint8), np.zeros((255, 3), np.float32))


def test_check_uint8_takes_only_what_check_takes_as_is():
    spec = InputSpec(shape=(4, 5, 1), scale=1 / 255, mean=(0.0,), std=(1.0,))
    x = np.zeros((2, 4, 5), np.uint8)
    assert spec.check_uint8(x).shape == (2, 4, 5, 1)
    assert np.shares_memory(spec.check_uint8(x), x)
    for other in (x.astype(np.int16), x[:0], x[:, :3], x.tolist(), x[0]):
        assert spec.check_uint8(other) is None


def test_runtime_embeds_uint8_as_float():
    rt = Runtime.load(sample_dir() / "compile.ecl")
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(rt.embed(x), rt.embed(x.astype(np.float32)))
    np.testing.assert_array_equal(rt.logits(x), rt.logits(x.astype(np.float64)))
