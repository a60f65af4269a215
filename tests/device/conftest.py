"""Fixtures of the device tests; the bundle builders live in devicehelpers.py."""

from __future__ import annotations

import pytest
from devicehelpers import make_bundle, synthetic_stream


@pytest.fixture
def stream():
    """8 classes of 8x8 images, 60 samples each, split into train / test halves."""
    x, y = synthetic_stream(8, 60, seed=1)
    return x[::2], y[::2], x[1::2], y[1::2]


@pytest.fixture
def bundle(tmp_path, stream):
    """Base classes c0, c1, c2 of the stream (GBM K=2 q=4, unbounded)."""
    x, y, _, _ = stream
    m = y < 3
    return make_bundle(tmp_path / "base.ecl", x[m], y[m], ["c0", "c1", "c2"])


@pytest.fixture
def bundle_maker():
    """:func:`make_bundle` as a fixture (test modules here are not a package)."""
    return make_bundle


@pytest.fixture
def stream_maker():
    """:func:`synthetic_stream` as a fixture."""
    return synthetic_stream
