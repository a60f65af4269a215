"""edgecl.validate: the one rule for positive ints, class names, packed words and seeds."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.errors import InvalidTypeError, InvalidValueError
from edgecl.kernels import pack_bits
from edgecl.validate import MAX_NAME, as_generator, check_class_name, check_words, pos_int


@pytest.mark.parametrize("v", [1, 7, np.int64(3), np.uint8(200)])
def test_pos_int_accepts_ints(v):
    assert pos_int(v, "n") == int(v) and type(pos_int(v, "n")) is int


@pytest.mark.parametrize("v", [0, -1, True, 1.0, "3", None, np.float32(2)])
def test_pos_int_refuses_the_rest(v):
    with pytest.raises(InvalidValueError, match=r"expected n as an int >= 1"):
        pos_int(v, "n")


def test_pos_int_minimum():
    assert pos_int(0, "n", 0) == 0
    with pytest.raises(InvalidValueError, match=">= 5"):
        pos_int(4, "n", 5)


@pytest.mark.parametrize("name", ["a", "cat dog", "Ünïcode ✓", "x" * MAX_NAME, "0", "a.b-c_d"])
def test_class_names_accepted(name):
    assert check_class_name(name) == name


@pytest.mark.parametrize(
    ("name", "exc"),
    [
        ("", InvalidValueError),
        ("x" * (MAX_NAME + 1), InvalidValueError),
        ("a/b", InvalidValueError),
        ("a\\b", InvalidValueError),
        ("tab\there", InvalidValueError),
        ("line\n", InvalidValueError),
        ("\u200b", InvalidValueError),  # zero-width space: not printable
        (3, InvalidTypeError),
        (None, InvalidTypeError),
        (b"a", InvalidTypeError),
    ],
)
def test_class_names_refused(name, exc):
    with pytest.raises(exc, match="class name"):
        check_class_name(name)


def test_a_long_name_is_not_echoed_whole():
    with pytest.raises(InvalidValueError) as info:
        check_class_name("y" * 100_000)
    assert "100000 characters" in str(info.value) and len(str(info.value)) < 600


def test_check_words():
    rng = np.random.default_rng(0)
    z = pack_bits(rng.random((4, 70)) < 0.5)
    out = check_words(z[::-1], 70)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, z[::-1])
    bad = z.copy()
    bad[0, 1] |= np.uint64(1) << np.uint64(63)  # a tail bit past bit 70
    for arg, exc, match in [
        (bad, InvalidValueError, "tail bits"),
        (z[:, :1], InvalidValueError, r"shape \(n, 2\)"),
        (z[:0], InvalidValueError, "at least one sample"),
        (z.astype(np.int64), InvalidTypeError, "uint64"),
        (rng.random((4, 70)) < 0.5, InvalidTypeError, "pack_bits"),
    ]:
        with pytest.raises(exc, match=match):
            check_words(arg, 70)


def test_as_generator():
    g = np.random.default_rng(1)
    assert as_generator(g) is g
    assert as_generator(5).integers(1 << 30) == np.random.default_rng(5).integers(1 << 30)
    assert isinstance(as_generator(None), np.random.Generator)
    with pytest.raises(InvalidTypeError, match="seed"):
        as_generator("5")
    with pytest.raises(InvalidTypeError, match="seed"):
        as_generator(1.5)
    with pytest.raises(InvalidValueError, match="seed >= 0"):
        as_generator(-2)
