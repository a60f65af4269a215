"""A head stored at 16 or 8 bits: fewer stored bytes, the same verbs, saved and loaded as is."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.bundle import decode_head, encode_head, head_bytes_per_class, read_bundle
from edgecl.device import Runtime
from edgecl.errors import BudgetError

NAMES = [f"c{i}" for i in range(8)]


def _acc(rt, x, y) -> float:
    return float(np.mean(rt.predict(x) == np.asarray(NAMES)[y]))


@pytest.mark.parametrize("bits", [16, 8])
def test_learns_saves_and_loads_at_lower_precision(tmp_path, stream, bundle_maker, bits):
    x, y, xt, yt = stream
    m = y < 3
    path = bundle_maker(tmp_path / "b.ecl", x[m], y[m], NAMES[:3], head_bits=bits)
    rt = Runtime.load(path)
    assert rt.learner.head_bits == bits
    for k in range(3, 8):
        rt.learn_class(NAMES[k], x[y == k], seed=k)
    assert _acc(rt, xt, yt) > 0.85
    mem = rt.memory()
    per_class = head_bytes_per_class(rt.n_bits, bits)
    assert mem.head_bytes_per_class == per_class
    assert mem.head_bytes == 8 * per_class
    assert mem.stored_bytes == mem.class_memory_bytes + mem.head_bytes
    assert sum(v for k, v in mem.parts.items() if k.startswith("head.")) == mem.head_bytes
    # what predicts is what is stored: the in-memory head is its own rounding
    np.testing.assert_array_equal(
        decode_head(encode_head(rt.head_weight, bits), bits), rt.head_weight
    )
    rt.save(tmp_path / "learned.ecl")
    manifest, arrays = read_bundle(tmp_path / "learned.ecl")
    assert manifest["head"]["bits"] == bits
    assert arrays[manifest["head"]["weight"]].dtype == (np.float16 if bits == 16 else np.int8)
    again = Runtime.load(tmp_path / "learned.ecl")
    np.testing.assert_array_equal(again.head_weight, rt.head_weight)
    np.testing.assert_array_equal(again.predict(xt), rt.predict(xt))
    assert again.memory().stored_bytes == mem.stored_bytes


def test_int8_head_fits_more_classes_in_the_same_budget(tmp_path, stream, bundle_maker):
    x, y, _, _ = stream
    m = y < 3
    sizes = {}
    for bits in (32, 8):
        path = bundle_maker(tmp_path / f"b{bits}.ecl", x[m], y[m], NAMES[:3], head_bits=bits)
        rt = Runtime.load(path)
        sizes[bits] = rt.memory().stored_bytes
    budget = sizes[32] + 400  # room for one more int8 class, not for a float32 one
    learned = {}
    for bits in (32, 8):
        path = bundle_maker(
            tmp_path / f"c{bits}.ecl", x[m], y[m], NAMES[:3], head_bits=bits, budget=budget
        )
        rt = Runtime.load(path)
        n = 0
        for k in range(3, 8):
            try:
                rt.learn_class(NAMES[k], x[y == k], seed=k)
            except BudgetError:
                break
            n += 1
        assert rt.memory().stored_bytes <= budget
        learned[bits] = n
    assert learned[8] > learned[32]


def test_int8_rounding_is_within_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(65, 7)).astype(np.float32)
    w[:, 3] = 0.0  # an all-zero class keeps scale 1 and stays zero
    stored = encode_head(w, 8)
    assert stored["weight"].dtype == np.int8 and stored["scale"].shape == (7,)
    back = decode_head(stored, 8)
    assert np.all(np.abs(back - w) <= stored["scale"] / 2 + 1e-7)
    np.testing.assert_array_equal(back[:, 3], 0.0)
    assert np.abs(stored["weight"]).max() == 127
    np.testing.assert_array_equal(decode_head(encode_head(w, 32), 32), w)
    with pytest.raises(ValueError, match="head bits"):
        encode_head(w, 4)
