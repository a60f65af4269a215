"""Stratified and class-incremental splits."""

import numpy as np
import pytest

from edgecl.data import class_incremental_split, select_classes, stratified_split, to_nchw


def test_stratified_split():
    y = np.repeat(np.arange(4), [10, 3, 1, 7])
    tr, te = stratified_split(y, 0.3, seed=0)
    assert np.intersect1d(tr, te).size == 0 and tr.size + te.size == y.size
    assert np.bincount(y[te], minlength=4).tolist() == [3, 1, 0, 2]
    assert np.array_equal(stratified_split(y, 0.3, seed=0)[1], te)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(y, 1.0)
    with pytest.raises(ValueError, match="integer labels"):
        stratified_split(np.zeros((2, 2), int), 0.5)


def test_class_incremental_split():
    y = np.array([3, 0, 1, 2, 4, 5, 0, 6, 1, 9, 8, 7, 7])
    tasks = class_incremental_split(y, 5, 2)
    assert [t.classes for t in tasks] == [(0, 1, 2, 3, 4), (5, 6), (7, 8), (9,)]
    assert np.array_equal(tasks[0].indices, [0, 1, 2, 3, 4, 6, 8])
    assert sum(len(t) for t in tasks) == y.size
    tasks = class_incremental_split(y, [9, 0], [3, 5])
    assert [t.classes for t in tasks] == [(9, 0), (1, 2, 3), (4, 5, 6, 7, 8)]
    a = class_incremental_split(y, 4, 3, shuffle_classes=True, seed=3)
    b = class_incremental_split(y, 4, 3, shuffle_classes=True, seed=3)
    c = class_incremental_split(y, 4, 3, shuffle_classes=True, seed=4)
    assert [t.classes for t in a] == [t.classes for t in b] != [t.classes for t in c]
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert class_incremental_split(y, 2, 8, class_order=order)[0].classes == (9, 8)
    with pytest.raises(ValueError, match="permutation"):
        class_incremental_split(y, 2, 1, class_order=[0, 1])
    with pytest.raises(ValueError, match="summing to 5"):
        class_incremental_split(y, 5, [2, 2])
    with pytest.raises(ValueError, match="base_classes"):
        class_incremental_split(y, 0, 1)


def test_select_classes_and_nchw():
    x = np.arange(12).reshape(6, 2)
    y = np.array([0, 1, 2, 1, 0, 2])
    xs, ys = select_classes(x, y, [2, 0])
    assert ys.tolist() == [0, 2, 0, 2] and xs[:, 0].tolist() == [0, 4, 8, 10]
    assert to_nchw(np.zeros((2, 5, 6), np.uint8)).shape == (2, 1, 5, 6)
    assert to_nchw(np.zeros((2, 5, 6, 3), np.uint8)).shape == (2, 3, 5, 6)
    with pytest.raises(ValueError):
        to_nchw(np.zeros(3))
