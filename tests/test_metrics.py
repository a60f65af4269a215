"""Continual-learning metrics on a hand-computed matrix."""

import numpy as np
import pytest

from edgecl.metrics import (
    accuracy_matrix,
    average_incremental_accuracy,
    backward_transfer,
    final_accuracy,
    forgetting,
    incremental_accuracies,
)

# rows: after step t; columns: step s's classes
A = np.array(
    [
        [0.9, 0.0, 0.0],
        [0.8, 0.7, 0.0],
        [0.6, 0.5, 0.9],
    ]
)


def test_hand_computed_matrix_unweighted():
    np.testing.assert_allclose(incremental_accuracies(A), [0.9, 0.75, (0.6 + 0.5 + 0.9) / 3])
    assert average_incremental_accuracy(A) == pytest.approx((0.9 + 0.75 + 2.0 / 3) / 3)
    assert final_accuracy(A) == pytest.approx(2.0 / 3)
    # forgetting: step 0: max(0.9, 0.8) - 0.6 = 0.3; step 1: 0.7 - 0.5 = 0.2
    assert forgetting(A) == pytest.approx(0.25)
    # BWT: (0.6 - 0.9 + 0.5 - 0.7) / 2
    assert backward_transfer(A) == pytest.approx(-0.25)


def test_weighted_by_test_samples():
    w = [50, 10, 40]
    # after step 1: (0.8*50 + 0.7*10) / 60
    np.testing.assert_allclose(
        incremental_accuracies(A, w), [0.9, 47 / 60, (0.6 * 50 + 0.5 * 10 + 0.9 * 40) / 100]
    )
    assert final_accuracy(A, w) == pytest.approx(0.71)


def test_accuracy_matrix_from_predictions():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    steps = [[0, 1], [2], [3]]
    preds = [
        np.array([0, 0, 1, 0, 0, 0, 0, 0]),  # after step 0: step0 3/4
        np.array([0, 1, 1, 1, 2, 0, 2, 2]),  # step0 3/4, step1 1/2, step2 0
        np.array([0, 0, 1, 1, 2, 2, 3, 2]),  # 1, 1, 1/2
    ]
    a = accuracy_matrix(y, preds, steps)
    expected = np.array([[0.75, 0.0, 0.0], [0.75, 0.5, 0.0], [1.0, 1.0, 0.5]])
    np.testing.assert_allclose(a, expected)
    # sample-weighted incremental accuracy equals plain accuracy on the seen classes
    seen = np.isin(y, [0, 1, 2])
    assert incremental_accuracies(a, [4, 2, 2])[1] == pytest.approx(
        np.mean(preds[1][seen] == y[seen])
    )


def test_single_step_and_errors():
    assert forgetting(np.array([[0.5]])) == 0.0
    assert backward_transfer(np.array([[0.5]])) == 0.0
    with pytest.raises(ValueError, match="square"):
        average_incremental_accuracy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="disjoint"):
        accuracy_matrix(np.zeros(2), [np.zeros(2)], [[0], [0]])
    with pytest.raises(ValueError, match="predictions"):
        accuracy_matrix(np.zeros(2), [np.zeros(3)], [[0]])
    with pytest.raises(ValueError, match="weights"):
        incremental_accuracies(A, [1, 2])
