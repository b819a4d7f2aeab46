"""Learning rules computed in numpy and their recall checks."""

import numpy as np
import pytest

from assoc_cvx import make_associations, make_competitors
from assoc_cvx.rules import (
    fit_rule,
    gradient_weights,
    hebbian_weights,
    pseudo_inverse_weights,
    recall_margins,
    recalled,
)


def _direct_recall(W, X, Y, Z=None):
    """Recall by a plain loop over inputs, independent of the module."""
    out = []
    for mu in range(len(X)):
        cands = np.delete(Y, mu, axis=0) if Z is None else Z[mu]
        out.append(Y[mu] @ W @ X[mu] > max(c @ W @ X[mu] for c in cands))
    return np.array(out)


@pytest.mark.parametrize("decoupled", [False, True])
def test_recalled_agrees_with_a_direct_loop(decoupled):
    X, Y = make_associations(15, 6, random_state=0)
    Z = make_competitors(15, 6, random_state=1) if decoupled else None
    W = hebbian_weights(X, Y)
    np.testing.assert_array_equal(recalled(W, X, Y, Z), _direct_recall(W, X, Y, Z))
    margin, bound = recall_margins(W, X, Y, Z)
    assert np.all(bound > 0)
    assert np.all(bound < 1e-12)
    np.testing.assert_array_equal(margin > bound, recalled(W, X, Y, Z))


def test_ties_are_not_recalled():
    X = np.eye(3)
    Y = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])
    W = np.eye(3)
    np.testing.assert_array_equal(recalled(W, X, Y), [False, False, True])


def test_pseudo_inverse_gives_identity_scores_below_d():
    X, Y = make_associations(5, 7, random_state=2)
    W = pseudo_inverse_weights(X, Y)
    np.testing.assert_allclose(X @ W.T @ Y.T, np.eye(5), atol=1e-10)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("decoupled", [False, True])
def test_gradient_training_stores_an_easy_set(optimizer, decoupled):
    X, Y = make_associations(12, 8, random_state=3)
    Z = make_competitors(12, 8, random_state=4) if decoupled else None
    lr = 0.1 if optimizer == "adam" else 5.0
    result = gradient_weights(X, Y, Z, optimizer=optimizer, learning_rate=lr)
    assert result.stop == "recalled"
    assert np.all(_direct_recall(result.W, X, Y, Z))
    assert 0 < result.n_iter < 4000


def test_gradient_loss_decreases_and_steps_are_counted():
    X, Y = make_associations(30, 6, random_state=5)  # above capacity
    short = gradient_weights(X, Y, max_iter=10)
    longer = gradient_weights(X, Y, max_iter=200)
    assert short.stop == "max_iter"
    assert short.n_iter == 10
    assert longer.loss < short.loss


def test_gradient_stops_on_tol():
    X, Y = make_associations(30, 6, random_state=5)
    result = gradient_weights(X, Y, tol=1.0, early_stopping=False)
    assert result.stop == "tol"
    assert result.n_iter == 0


def test_gradient_divergence_is_an_error():
    X, Y = make_associations(30, 6, random_state=5)
    with pytest.raises(FloatingPointError, match="lower learning_rate"):
        gradient_weights(1e150 * X, Y, optimizer="sgd", learning_rate=1e200)


def test_fit_rule_rejects_unknown_rules():
    X, Y = make_associations(3, 3, random_state=0)
    with pytest.raises(ValueError, match="rule must be one of 'hebbian'"):
        fit_rule("max_margin", X, Y)
