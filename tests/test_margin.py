"""Storage with a margin kappa and listwise (tail-average) retrieval."""

import dataclasses
import math

import numpy as np
import pytest
from conftest import REFERENCE, reference_instance, solver_params

from assoc_cvx import (
    LinearAssociativeMemory,
    SolverWarning,
    StorageWarning,
    check_storage,
    find_capacity,
    make_associations,
    margin,
)
from assoc_cvx.margin import (
    MARGIN_SOLVERS,
    _cap_weights,
    check_listwise,
    decide_margin,
    listwise_margins,
    topk_recall,
)
from assoc_cvx.programs import difference_tensor
from assoc_cvx.theory import listwise_alpha, listwise_threshold, rs_capacity

#: The cvxpy cone solvers, which decide margins and listwise programs.
FRO_SOLVERS = [s for s in solver_params("fro") if s.values[0] in MARGIN_SOLVERS]
#: Reference entries used here: one storable/unstorable pair per set.
ENTRIES = [e for e in REFERENCE if e["name"] in ("d6_i1_coupled", "d8_i1_decoupled")]


def _margins_by_loops(W, X, Y, Z):
    """(p, K) margins computed one constraint at a time."""
    p = X.shape[0]
    rows = []
    for mu in range(p):
        rivals = [Y[nu] for nu in range(p) if nu != mu] if Z is None else Z[mu]
        rows.append([(Y[mu] - r) @ W @ X[mu] for r in rivals])
    return np.array(rows)


def _tail_mean_by_sorting(m, q):
    """Mean of the q smallest entries, q an integer (independent of the package)."""
    return np.array([np.mean(sorted(row)[:q]) for row in m])


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_kappa_zero_program_matches_plain_storage(entry):
    for p, expected in entry["verdicts"].items():
        if abs(p - entry["critical_p"]) > 1:
            continue
        X, Y, Z = reference_instance(entry, p)
        res = decide_margin(
            X, difference_tensor(Y, Z), solvers=["ECOS", "CLARABEL"], constraints=""
        )
        assert res.stored is expected, p


@pytest.mark.parametrize("solver", solver_params("fro"))
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_margin_verdict_brackets_the_best_margin(entry, solver):
    p, d = entry["critical_p"], entry["n_features"]
    X, Y, Z = reference_instance(entry, p)
    best = d * check_storage(X, Y, competitors=Z).margin  # kappa* at ||W||_F = d
    below = check_storage(X, Y, competitors=Z, kappa=0.9 * best, solver=solver)
    assert below.stored is True
    assert np.linalg.norm(below.W) == pytest.approx(d)
    assert np.linalg.norm(below.W) <= d
    assert _margins_by_loops(below.W, X, Y, Z).min() >= 0.9 * best
    assert below.solver == solver  # IPM decides margins too
    above = check_storage(X, Y, competitors=Z, kappa=1.1 * best, solver=solver)
    assert above.stored is False
    assert above.solver == solver
    assert above.margin_upper < 1.1 * best / d
    lam = above.dual_weights
    assert lam.min() >= 0
    assert lam.sum() == pytest.approx(1.0)


def test_two_agreeing_solvers_refute_a_margin_without_certificate(monkeypatch):
    entry = ENTRIES[0]
    X, Y, Z = reference_instance(entry, entry["critical_p"])
    D = difference_tensor(Y, Z)
    kappa = 1.2 * entry["n_features"] * check_storage(X, Y, competitors=Z).margin
    monkeypatch.setattr(margin, "_certificate_bound", lambda *a: (np.nan, None))
    one = decide_margin(X, D, solvers=["ECOS"], constraints="", kappa=kappa)
    assert one.stored is None
    two = decide_margin(X, D, solvers=["ECOS", "CLARABEL"], constraints="", kappa=kappa)
    assert two.stored is False
    assert two.dual_weights is None
    assert "agree" in two.attempts[-1].message


def test_margin_solvers_keep_the_ipm_first_then_cone_solvers():
    kept = margin.margin_solvers(["IPM"])
    assert kept[0] == "IPM"
    assert len(kept) > 1
    assert set(kept[1:]) <= set(margin.MARGIN_SOLVERS)
    with pytest.raises(ValueError, match="Frobenius-ball solver"):
        margin.margin_solvers(["HIGHS"])


def test_duplicate_targets_are_never_stored_with_a_margin():
    X, Y = make_associations(5, 6, random_state=1)
    Y[3] = Y[1]
    res = check_storage(X, Y, kappa=0.01)
    assert res.stored is False
    assert res.margin_upper < 1e-8


def test_margin_storage_is_monotone_in_kappa_per_instance():
    plain = find_capacity(5, n_instances=4, random_state=3)
    with_margin = find_capacity(5, n_instances=4, random_state=3, kappa=0.3)
    assert np.all(with_margin.critical_p <= plain.critical_p)
    assert with_margin.kappa == 0.3
    assert with_margin.summary()["kappa"] == 0.3


def test_estimator_with_margin_reaches_it():
    X, Y = make_associations(10, 6, random_state=0)
    kappa = 0.9 * 6 * check_storage(X, Y).margin
    memory = LinearAssociativeMemory(kappa=kappa).fit(X, Y)
    assert memory.stored_ is True
    W = memory.coef_
    assert _margins_by_loops(W * 6 / np.linalg.norm(W), X, Y, None).min() >= kappa
    assert memory.get_params()["kappa"] == kappa
    with pytest.warns(StorageWarning, match="margin kappa"):
        too_much = LinearAssociativeMemory(kappa=1.2 * kappa / 0.9).fit(X, Y)
    assert too_much.stored_ is False


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kappa": -0.1}, ValueError, "kappa must be a finite number >= 0"),
        ({"kappa": math.inf}, ValueError, "kappa must be a finite number >= 0"),
        ({"kappa": "1"}, TypeError, "kappa must be a finite number"),
        ({"kappa": 0.1, "solver": "HIGHS", "fallback": False}, ValueError, "ECOS"),
    ],
)
def test_bad_margin_arguments(kwargs, error, match):
    X, Y = make_associations(4, 3, random_state=0)
    with pytest.raises(error, match=match):
        check_storage(X, Y, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"retrieval": "listwise"}, "needs r"),
        ({"r": 0.5}, "only used with retrieval='listwise'"),
        ({"retrieval": "list", "r": 0.5}, "retrieval must be one of"),
        ({"retrieval": "listwise", "r": 0.0}, r"r must be a number in \(0, 1\]"),
    ],
)
def test_bad_capacity_criteria(kwargs, match):
    with pytest.raises(ValueError, match=match):
        find_capacity(3, n_instances=1, random_state=0, **kwargs)


# ---------------------------------------------------------------- listwise


def test_tail_statistic_is_the_mean_of_the_smallest_margins(rng):
    m = rng.standard_normal((7, 10))
    for q in (1, 3, 10):
        np.testing.assert_allclose(
            listwise_margins(m, q / 10), _tail_mean_by_sorting(m, q), rtol=1e-12
        )
    # fractional q interpolates between the two integer tails
    lo, hi = _tail_mean_by_sorting(m, 2), _tail_mean_by_sorting(m, 3)
    s = listwise_margins(m, 0.25)
    np.testing.assert_allclose(s, (2 * lo + 0.5 * (3 * hi - 2 * lo)) / 2.5)
    np.testing.assert_array_equal(listwise_margins(m, 0.05), m.min(axis=1))


def test_capped_weights_are_dual_feasible(rng):
    for q in (1.5, 2.0, 3.7):
        nu = rng.exponential(size=9) ** 3
        capped = _cap_weights(nu, q)
        assert np.all(capped >= 0)
        assert np.all(capped <= nu + 1e-15)
        assert capped.max() <= capped.sum() / q * (1 + 1e-12)
    # too few positive weights to spread over q: nothing is left
    assert np.all(_cap_weights(np.array([1.0, 0.0, 0.0]), 2.0) == 0)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_listwise_covering_one_competitor_is_top1(entry):
    for p in (entry["critical_p"], entry["critical_p"] + 1):
        X, Y, Z = reference_instance(entry, p)
        res = check_listwise(X, Y, r=1 / (p - 1), competitors=Z)
        assert res.stored is entry["verdicts"][p]


@pytest.mark.parametrize("solver", FRO_SOLVERS)
def test_listwise_stores_past_top1_capacity(solver):
    entry = next(e for e in ENTRIES if e["constraints"] == "coupled")
    p = entry["critical_p"] + 2  # certified unstorable top-1
    X, Y, _ = reference_instance(entry, p)
    assert check_storage(X, Y).stored is False
    r = 0.5
    res = check_listwise(X, Y, r=r, solver=solver)
    assert res.stored is True
    d = X.shape[1]
    assert np.linalg.norm(res.W) == pytest.approx(d)
    q = r * (p - 1)
    m = _margins_by_loops(res.W, X, Y, None)
    assert listwise_margins(m, r).min() > 0
    # beating the mean of the top q competitors puts the target in the top ceil(q)
    assert topk_recall(res.W, X, Y, math.ceil(q)) == 1.0


def test_topk_recall_counts_ranks_against_a_brute_force_count(rng):
    X, Y = make_associations(6, 4, random_state=0)
    W = rng.standard_normal((4, 4))
    S = X @ W.T @ Y.T  # S[mu, nu]: score of target nu for input mu
    ahead = (S >= np.diag(S)[:, None]).sum(axis=1) - 1  # others at least as high
    for k in range(1, 7):
        assert topk_recall(W, X, Y, k) == pytest.approx(np.mean(ahead < k))
    # a rectangular memory (d_out = 3, d_in = 4) with private competitors
    Z = rng.standard_normal((6, 2, 3))
    assert 0 <= topk_recall(rng.standard_normal((3, 4)), X, Y[:, :3], 3, competitors=Z)


@pytest.mark.parametrize(
    ("W", "k", "error", "match"),
    [
        (np.full((4, 4), np.nan), 1, ValueError, "W contains NaN or infinity"),
        (np.eye(4) + 1j, 1, TypeError, "W must be real"),
        (np.eye(3), 1, ValueError, r"W must have shape \(4, 4\).*got \(3, 3\)"),
        (np.eye(4)[0], 1, ValueError, "W must be a 2-D array"),
        (np.eye(4), 0, ValueError, "k must be an integer >= 1; got 0"),
        (np.eye(4), -1, ValueError, "k must be an integer >= 1; got -1"),
        (np.eye(4), 7, ValueError, r"k must be an integer in \[1, 6\].*got 7"),
        (np.eye(4), 1.5, TypeError, "k must be an integer >= 1; got 1.5"),
        (np.eye(4), "a", TypeError, "k must be an integer >= 1; got 'a'"),
        (np.eye(4), True, TypeError, "k must be an integer >= 1; got True"),
    ],
)
def test_topk_recall_rejects_bad_input(W, k, error, match):
    X, Y = make_associations(6, 4, random_state=0)
    with pytest.raises(error, match=match):
        topk_recall(W, X, Y, k)


def test_topk_recall_checks_patterns_like_check_storage():
    X, Y = make_associations(6, 4, random_state=0)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        topk_recall(np.eye(4), np.full_like(X, np.nan), Y)
    with pytest.raises(ValueError, match="same number of rows"):
        topk_recall(np.eye(4), X, Y[:5])
    with pytest.raises(ValueError, match="competitors must have shape"):
        topk_recall(np.eye(4), X, Y, competitors=np.zeros((6, 2, 3)))


@pytest.mark.parametrize("r", [0.3, 1.0])
def test_one_shared_input_is_never_listwise_storable(r):
    # the lowest-scoring target never beats the others' tail average
    X, Y = make_associations(6, 4, random_state=2)
    X[:] = X[0]
    res = check_listwise(X, Y, r=r)
    assert res.stored is False
    assert res.certificate <= 1e-8
    lam = res.dual_weights
    q = r * 5
    assert np.all(lam.max(axis=1) <= lam.sum(axis=1) / q * (1 + 1e-9))


def test_listwise_with_margin_and_decoupled_competitors(rng):
    X, Y = make_associations(8, 4, random_state=5)
    Z = rng.standard_normal((8, 6, 4)) / 2
    free = check_listwise(X, Y, r=0.5, competitors=Z)
    best = listwise_margins(
        _margins_by_loops(free.W / 4, X, Y, Z), 0.5
    ).min()  # statistic at ||W||_F = 1 of a near-optimal W
    assert check_listwise(X, Y, r=0.5, competitors=Z, kappa=3.6 * best).stored
    assert check_listwise(X, Y, r=0.5, competitors=Z, kappa=4.4 * best).stored is False


def test_listwise_capacity_is_at_least_top1_per_instance():
    top1 = find_capacity(4, n_instances=3, random_state=1)
    listwise = find_capacity(
        4, n_instances=3, random_state=1, retrieval="listwise", r=0.5
    )
    assert np.all(listwise.critical_p >= top1.critical_p)
    assert listwise.retrieval == "listwise"


def test_listwise_checkpoint_is_not_mixed_with_top1(tmp_path):
    path = tmp_path / "run.jsonl"
    top1 = find_capacity(4, n_instances=2, random_state=1, checkpoint=path)
    listwise = find_capacity(
        4, n_instances=2, random_state=1, checkpoint=path, retrieval="listwise", r=0.5
    )
    assert np.any(listwise.critical_p != top1.critical_p)


# ---------------------------------------------------------------- predictions


def test_listwise_prediction_with_a_margin():
    # r = 1: the mean of all competitors is one linear constraint (Cover: 2)
    assert listwise_alpha(1.0) == pytest.approx(2.0)
    assert listwise_alpha(1.0, 0.5) < listwise_alpha(1.0)
    # E[(k - G)_+^2] by quadrature against the closed form, k = kappa_r + kappa
    r, kappa = 0.2, 0.3
    k = listwise_threshold(r) + kappa
    g = np.linspace(-12, k, 200001)
    dens = np.exp(-0.5 * g * g) / np.sqrt(2 * np.pi)
    assert 1 / np.trapezoid((k - g) ** 2 * dens, g) == pytest.approx(
        listwise_alpha(r, kappa), rel=1e-5
    )


def test_rs_prediction_of_a_frozen_first_layer():
    assert rs_capacity(10, n_hidden=10) == rs_capacity(10)
    caps = [rs_capacity(16, n_hidden=k) for k in (4, 8, 12, 16)]
    assert np.all(np.diff(caps) > 0)
    margins = [rs_capacity(10, kappa) for kappa in (0.0, 0.2, 0.5)]
    assert np.all(np.diff(margins) < 0)


def test_an_indecisive_ipm_solve_falls_back_to_the_cone_solvers(monkeypatch):
    entry = ENTRIES[0]
    X, Y, Z = reference_instance(entry, entry["critical_p"] - 1)
    best = entry["n_features"] * check_storage(X, Y, competitors=Z).margin
    real = margin.decide

    def weak(*args, **kwargs):
        # A W that stores nothing and no dual weights: neither side of kappa
        # is proved by the structured solver.
        res = real(*args, **kwargs)
        W = np.random.default_rng(0).standard_normal(res.W.shape)
        return dataclasses.replace(res, W=W, dual_weights=None)

    monkeypatch.setattr(margin, "decide", weak)
    with pytest.warns(SolverWarning, match="IPM did not decide"):
        res = check_storage(X, Y, competitors=Z, kappa=0.9 * best, solver="IPM")
    assert res.stored is True
    assert res.solver in MARGIN_SOLVERS
    assert [a.solver for a in res.attempts][-1] == res.solver
