"""Two-layer memories: frozen first layer (exact) and trained pair search."""

import numpy as np
import pytest

from assoc_cvx import check_storage, make_associations, make_competitors
from assoc_cvx.two_layer import (
    check_frozen_storage,
    find_two_layer_capacity,
    hidden_width,
    random_first_layer,
    train_two_layer,
    two_layer_margins,
)


def _margins_by_loops(W1, W2, X, Y, Z=None):
    p = X.shape[0]
    out = []
    for mu in range(p):
        rivals = [Y[nu] for nu in range(p) if nu != mu] if Z is None else Z[mu]
        h = W1 @ X[mu]
        out.extend((Y[mu] - r) @ (W2 @ h) for r in rivals)
    return np.array(out)


@pytest.mark.parametrize("decoupled", [False, True])
def test_p_at_most_k_generic_sets_are_frozen_storable(decoupled):
    d, k = 8, 4
    X, Y = make_associations(k, d, random_state=0)
    Z = make_competitors(k, d, random_state=1) if decoupled else None
    W1 = random_first_layer(k, d, random_state=2)
    res = check_frozen_storage(X, Y, W1, competitors=Z)
    assert res.stored is True
    assert res.W.shape == (d, k)
    assert _margins_by_loops(W1, res.W, X, Y, Z).min() > 0


def test_duplicate_targets_are_never_stored_by_two_layers():
    X, Y = make_associations(6, 6, random_state=0)
    Y[4] = Y[2]
    W1 = random_first_layer(3, 6, random_state=1)
    assert check_frozen_storage(X, Y, W1).stored is False
    res = train_two_layer(X, Y, 3, n_starts=2, max_steps=200, random_state=0)
    assert res.stored is False
    assert res.method is None
    assert res.margin <= 0


def test_frozen_layer_beyond_its_capacity_is_certified_unstorable():
    # k = 1: a single hidden unit; every input's scores are h_mu * (W2 y_nu),
    # so at most two targets can be recalled (the extremes of W2^T y).
    X, Y = make_associations(3, 5, random_state=4)
    W1 = random_first_layer(1, 5, random_state=5)
    res = check_frozen_storage(X, Y, W1)
    assert res.stored is False
    assert res.dual_weights is not None


def test_trained_pair_is_proved_through_its_factors():
    X, Y = make_associations(14, 6, random_state=3)
    res = train_two_layer(X, Y, 3, random_state=0)
    assert res.stored is True
    assert res.W1.shape == (3, 6)
    assert res.W2.shape == (6, 3)
    assert _margins_by_loops(res.W1, res.W2, X, Y).min() > 0
    others = np.array([[j for j in range(14) if j != i] for i in range(14)])
    D = Y[:, None, :] - Y[others]
    lower = two_layer_margins(res.W1, res.W2, X, D)
    np.testing.assert_allclose(
        lower.ravel(), _margins_by_loops(res.W1, res.W2, X, Y), rtol=1e-9
    )


@pytest.mark.parametrize("method", ["alternating", "gradient"])
def test_each_search_method_beats_the_frozen_layer(method):
    d, k = 8, 4
    X, Y = make_associations(16, d, random_state=7)
    W1 = random_first_layer(k, d, random_state=8)
    assert check_frozen_storage(X, Y, W1).stored is False
    assert check_storage(X, Y).stored is True
    res = train_two_layer(X, Y, k, method=method, W1_init=W1, random_state=0)
    assert res.stored is True
    assert res.method == method
    assert _margins_by_loops(res.W1, res.W2, X, Y).min() > 0


def test_capacity_order_frozen_trained_one_layer():
    res = find_two_layer_capacity(
        6, 0.5, mode="trained", n_instances=3, random_state=0, max_steps=1000
    )
    assert res.n_hidden == 3
    for inst in res.instances:
        assert inst.frozen <= inst.trained <= inst.one_layer
    assert res.trained > res.frozen  # training the first layer helps


def test_full_width_frozen_layer_is_one_layer():
    full = find_two_layer_capacity(
        5, 1.0, mode="trained", n_instances=3, random_state=1
    )
    for inst in full.instances:
        assert inst.frozen == inst.trained == inst.one_layer


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda X, Y: check_frozen_storage(X, Y, np.ones((2, 3))), ValueError, "W1"),
        (
            lambda X, Y: check_frozen_storage(X, Y, np.zeros((0, 4))),
            ValueError,
            r"W1 must have shape \(k, 4\) with k >= 1.*got \(0, 4\)",
        ),
        (
            lambda X, Y: check_frozen_storage(X, Y, np.eye(4) + 1j),
            TypeError,
            "W1 must be real; got complex values",
        ),
        (
            lambda X, Y: check_frozen_storage(X, Y, np.full((2, 4), np.inf)),
            ValueError,
            "W1 contains NaN or infinity",
        ),
        (
            lambda X, Y: check_frozen_storage(X, Y, np.ones(4)),
            ValueError,
            "W1 must be a 2-D array",
        ),
        (
            lambda X, Y: train_two_layer(X, Y, 4, W1_init=np.eye(4) + 1j),
            TypeError,
            "W1_init must be real",
        ),
        (lambda X, Y: train_two_layer(X, Y, 2, method="adam"), ValueError, "method"),
        (lambda X, Y: train_two_layer(X, Y, 0), ValueError, "n_hidden"),
        (
            lambda X, Y: train_two_layer(X, Y, 2, W1_init=np.ones((3, 4))),
            ValueError,
            "W1_init",
        ),
        (lambda X, Y: hidden_width(4, -1.0), ValueError, "hidden_ratio"),
        (
            lambda X, Y: train_two_layer(X, Y, 2, n_rounds=0),
            ValueError,
            "n_rounds must be an integer >= 1; got 0",
        ),
        (
            lambda X, Y: find_two_layer_capacity(4, 0.5, mode="both"),
            ValueError,
            "mode",
        ),
    ],
)
def test_bad_two_layer_arguments(call, error, match):
    X, Y = make_associations(5, 4, random_state=0)
    with pytest.raises(error, match=match):
        call(X, Y)
