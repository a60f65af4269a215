"""A format-1 bundle written by the code before the typed-manifest redesign (commit 05eed10,
``tests/fixtures/make_v1_bundle.py``) keeps loading, predicting and learning as it did."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecl.device import Runtime

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _agree_where_not_tied(proba: np.ndarray, got: np.ndarray, want: np.ndarray) -> None:
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-4
    assert clear.sum() >= len(proba) // 2
    np.testing.assert_array_equal(got[clear], want[clear])


def test_v1_bundle_loads_and_answers_as_before(tmp_path):
    want = np.load(FIXTURES / "v1_expected.npz")
    rt = Runtime.load(FIXTURES / "v1_bundle.ecl")
    probe = want["probe"]
    np.testing.assert_array_equal(rt.embed(probe), want["embed"])
    np.testing.assert_allclose(rt.logits(probe), want["logits"], rtol=0, atol=1e-5)
    proba = rt.predict_proba(probe)
    np.testing.assert_allclose(proba, want["proba"], rtol=0, atol=1e-5)
    _agree_where_not_tied(proba, np.asarray(rt.predict(probe)), want["predict"])
    assert rt.memory().stored_bytes == int(want["stored_bytes"])


def test_v1_bundle_learns_as_before(tmp_path):
    want = np.load(FIXTURES / "v1_expected.npz")
    rt = Runtime.load(FIXTURES / "v1_bundle.ecl")
    rt.learn_class("d", want["new"], seed=3)
    proba = rt.predict_proba(want["probe"])
    np.testing.assert_allclose(proba, want["learned_proba"], rtol=0, atol=1e-4)
    _agree_where_not_tied(proba, np.asarray(rt.predict(want["probe"])), want["learned_predict"])
    assert rt.memory().stored_bytes == int(want["learned_stored_bytes"])
    rt.save(tmp_path / "learned.ecl")
    again = Runtime.load(tmp_path / "learned.ecl")
    np.testing.assert_allclose(again.predict_proba(want["probe"]), proba, rtol=0, atol=1e-6)
