"""The threshold fold the torch exporter and the Larq importer share (edgecl.program.lowering)."""

import numpy as np
import pytest

from edgecl.errors import ExportError
from edgecl.program.lowering import append_op, bisect_float_thresholds, int_thresholds_from_bits
from edgecl.program.ops import Threshold


def test_int_thresholds_rising_falling_and_constant_rows():
    n = 3
    acc = np.arange(-n, n + 1)
    bits = np.stack([acc >= 1, acc <= -2, np.ones(7, bool), np.zeros(7, bool), acc >= -3])
    thr, flip = int_thresholds_from_bits(bits, n, lambda o: f"channel {o}")
    assert thr.dtype == np.int32
    assert thr.tolist() == [1, -2, -n, n + 1, -3]
    assert flip.tolist() == [False, True, False, False, False]
    # the rule the device applies reproduces every row
    for o in range(len(bits)):
        got = acc <= thr[o] if flip[o] else acc >= thr[o]
        assert (got == bits[o]).all()


def test_int_thresholds_refuse_a_bit_that_is_not_monotone():
    bits = np.array([[False, True, False, True, True]])
    with pytest.raises(ExportError, match="layer x: channel 0"):
        int_thresholds_from_bits(bits, 2, lambda o: f"layer x: channel {o}")


def test_bisection_finds_the_float32_where_the_bit_changes():
    cut = np.array([0.1, -2.5, 7.0], np.float32)

    def bit_at(v):
        return np.array([v[0] >= cut[0], v[1] <= cut[1], v[2] == v[2]])

    thr, flip = bisect_float_thresholds(bit_at, 3)
    assert thr.dtype == np.float32
    assert thr[0] == cut[0] and thr[1] == cut[1] and thr[2] == -np.inf
    assert flip.tolist() == [False, True, False]
    # the next float32 down from a rising threshold is off
    assert np.nextafter(thr[0], np.float32(-np.inf)) < cut[0]


def test_append_op_names_its_arrays_by_index():
    ops, arrays = [], {}
    t = np.array([1, 2], np.int32)
    f = np.array([False, True])
    shape = append_op(
        ops,
        arrays,
        Threshold,
        "bn",
        (4, 4, 2),
        [np.int64(4), 4, 2],
        {"thresholds": t, "flip": f},
        repeat=1,
    )
    assert shape == (4, 4, 2) and all(type(s) is int for s in shape)
    assert ops[0].thresholds == "layers.0.thresholds" and arrays["layers.0.flip"] is f
