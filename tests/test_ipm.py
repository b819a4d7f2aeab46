"""The structured interior-point solver (IPM): verdicts, evidence and front ends.

Every verdict of the IPM is checked against the cvxpy reference path
(Clarabel) or against ground truth, and its evidence is recomputed here one
constraint at a time, independently of the package's vectorised code.
"""

import dataclasses
import functools
import warnings
from fractions import Fraction

import cvxpy as cp
import numpy as np
import pytest
from conftest import REFERENCE, TOL, reference_instance

import assoc_cvx.engine as engine
import assoc_cvx.ipm as ipm
from assoc_cvx import (
    SolverWarning,
    StorageResult,
    check_storage,
    make_associations,
    make_competitors,
)
from assoc_cvx._exact import confirm_not_storable
from assoc_cvx.engine import CERTIFICATE_TOL, IPM_METHOD, decide, storage_result_of
from assoc_cvx.ipm import (
    IPM_OPTIONS,
    InsufficientMemoryError,
    estimate_memory,
    solve_storage_ipm,
)
from assoc_cvx.patterns import NestedPool
from assoc_cvx.programs import (
    difference_tensor,
    max_margin_program,
    scale_free_program,
)

CONSTRAINTS = ["coupled", "decoupled"]
MODES = ["max_margin", "verdict"]


# --- independent recomputation of the evidence ---------------------------------


def _rivals(Y, Z, mu):
    """Competitors of input mu: the other targets (Z None) or its private ones."""
    if Z is None:
        return [Y[nu] for nu in range(Y.shape[0]) if nu != mu]
    return list(Z[mu])


def _margins_by_loops(W, X, Y, Z):
    """Every margin (y_mu - rival)^T W x_mu, one constraint at a time."""
    out = []
    for mu in range(X.shape[0]):
        out.extend((Y[mu] - r) @ W @ X[mu] for r in _rivals(Y, Z, mu))
    return np.array(out)


def _certificate_norm(weights, X, Y, Z):
    """||sum lambda_{mu k} kron(y_mu - rival_k, x_mu)||, one row at a time."""
    total = np.zeros((Y.shape[1], X.shape[1]))
    for mu in range(X.shape[0]):
        for k, r in enumerate(_rivals(Y, Z, mu)):
            total += weights[mu, k] * np.outer(Y[mu] - r, X[mu])  # unraveled kron
    return np.linalg.norm(total)


def _data_scale(X, Y, Z):
    """RMS input norm times RMS difference norm (the scale of test_engine)."""
    diffs = [
        np.sum((Y[mu] - r) ** 2) for mu in range(X.shape[0]) for r in _rivals(Y, Z, mu)
    ]
    return np.sqrt(np.mean(np.sum(X**2, 1))) * np.sqrt(np.mean(diffs))


def _assert_stored(result, X, Y, Z):
    """result.W stores the set: all margins > 0 and each input recalls its target."""
    assert result.stored is True
    assert result.status == "stored"
    m = _margins_by_loops(result.W, X, Y, Z)
    assert m.min() > 0
    assert m.min() == pytest.approx(1.0, rel=TOL["unit_margin_rtol"])
    assert result.margin == pytest.approx(
        m.min() / np.linalg.norm(result.W), rel=TOL["unit_margin_rtol"]
    )
    for mu in range(X.shape[0]):
        candidates = [Y[mu], *_rivals(Y, Z, mu)]
        scores = [c @ result.W @ X[mu] for c in candidates]
        assert int(np.argmax(scores)) == 0, mu


def _assert_not_storable(result, X, Y, Z):
    """result.dual_weights are a certificate: lambda >= 0, sum 1, A^T lambda ~ 0."""
    assert result.stored is False
    assert result.status == "not_storable"
    assert result.W is None
    lam = result.dual_weights
    assert lam.min() >= 0
    assert lam.sum() == pytest.approx(1.0)
    assert _certificate_norm(lam, X, Y, Z) <= CERTIFICATE_TOL * _data_scale(X, Y, Z)


def _assert_verified(result, X, Y, Z):
    if result.stored:
        _assert_stored(result, X, Y, Z)
    else:
        _assert_not_storable(result, X, Y, Z)


def _ipm(X, Y, Z=None, **kwargs):
    return check_storage(X, Y, competitors=Z, solver="IPM", fallback=False, **kwargs)


@pytest.fixture
def cached_solver_list(monkeypatch):
    """Ask cvxpy for its installed solvers once per test.

    check_storage asks on every call (a few ms, a noticeable part of checking
    a small set). The answer cannot change during a test, so the tests that
    solve hundreds of sets cache it.
    """
    monkeypatch.setattr(cp, "installed_solvers", functools.cache(cp.installed_solvers))


def _competitors(constraints, p, d, seed):
    if constraints == "coupled":
        return None
    return make_competitors(p, d, random_state=seed)


# --- 1. agreement with Clarabel at the threshold of nested instances -----------


def _critical_p(pool, guess):
    """Largest stored p of a nested pool by IPM verdicts: galloping, then bisection.

    Returns p_c and the IPM results at p_c (stored) and p_c + 1 (not stored).
    """
    results = {}

    def stored(p):
        if p not in results:
            X, Y, Z = pool(p)
            results[p] = _ipm(X, Y, Z, mode="verdict")
            assert results[p].stored is not None, f"IPM undecided at p={p}"
        return results[p].stored

    lo, hi, step = guess, guess + 1, 1
    while not stored(lo):
        assert lo > 2, "not even two patterns stored"
        lo, hi, step = max(2, lo - step), lo, 2 * step
    step = 1
    while stored(hi):
        lo, hi, step = hi, hi + step, 2 * step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if stored(mid) else (lo, mid)
    return lo, results[lo], results[hi]


#: Clarabel's own threads slow it down several times on a loaded 2-core machine.
ONE_THREAD = {"CLARABEL": {"max_threads": 1}}

#: (d, guess of p_c, instances per constraint set): 2 * (35 + 12 + 3) = 100 in
#: all, Clarabel being ~20 times slower at d = 12 than at d = 8.
THRESHOLD_GRID = [(8, 23, 35), (10, 30, 12), (12, 40, 3)]


@pytest.mark.parametrize("constraints", CONSTRAINTS)
@pytest.mark.parametrize(("d", "guess", "n_instances"), THRESHOLD_GRID)
@pytest.mark.usefixtures("cached_solver_list")
def test_critical_p_agrees_with_clarabel(d, guess, n_instances, constraints):
    """At the IPM's p_c and p_c + 1, Clarabel never decides otherwise."""
    undecided = 0
    for i in range(n_instances):
        seed = np.random.SeedSequence([20261203, d, CONSTRAINTS.index(constraints), i])
        pool = NestedPool(d, constraints, "gaussian", seed)
        p_c, at, above = _critical_p(pool, guess)
        assert 0.5 * guess < p_c < 1.6 * guess
        for p, ipm_result in ((p_c, at), (p_c + 1, above)):
            X, Y, Z = pool(p)
            _assert_verified(ipm_result, X, Y, Z)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SolverWarning)
                reference = check_storage(
                    X,
                    Y,
                    competitors=Z,
                    solver="CLARABEL",
                    fallback=False,
                    solver_options=ONE_THREAD,
                )
            if reference.stored is None:
                undecided += 1
            else:
                assert reference.stored is ipm_result.stored, (i, p)
        assert at.stored is True
        assert above.stored is False
    assert undecided <= 1 + n_instances // 10


# --- 2. the reference file ------------------------------------------------------


@pytest.mark.usefixtures("cached_solver_list")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("entry", REFERENCE, ids=lambda e: e["name"])
def test_reference_verdicts_at_every_p(entry, mode):
    """Every verdict of the reference file, in both modes, with its evidence."""
    for p, expected in entry["verdicts"].items():
        X, Y, Z = reference_instance(entry, p)
        result = _ipm(X, Y, Z, mode=mode)
        assert result.stored is expected, p
        assert result.solver == "IPM"
        _assert_verified(result, X, Y, Z)
        if mode == "max_margin" and p == entry["critical_p"]:
            assert result.max_margin is True
            assert result.margin == pytest.approx(
                entry["kappa_at_critical"], rel=TOL["kappa_rtol"]
            )


# --- 3. max-margin and verdict modes ---------------------------------------------


@pytest.mark.parametrize("constraints", CONSTRAINTS)
@pytest.mark.parametrize(("d", "p"), [(4, 6), (6, 10), (8, 16)])
def test_max_margin_mode_returns_the_max_margin_matrix(d, p, constraints):
    """mode="max_margin": W is the QP optimum; mode="verdict": a storing W no better."""
    X, Y = make_associations(p, d, random_state=10 * d + p)
    Z = _competitors(constraints, p, d, seed=d + p)
    program = max_margin_program(X, difference_tensor(Y, Z))
    program.problem.solve(solver="CLARABEL")
    assert program.problem.status == cp.OPTIMAL
    best = _ipm(X, Y, Z, mode="max_margin")
    _assert_stored(best, X, Y, Z)
    assert best.max_margin is True
    np.testing.assert_allclose(
        best.W, program.W.value, rtol=TOL["max_margin_w_rtol"], atol=1e-6
    )
    fast = _ipm(X, Y, Z, mode="verdict")
    _assert_stored(fast, X, Y, Z)
    assert fast.max_margin is False
    assert fast.margin <= best.margin * (1 + 1e-9)
    # the max-margin W has the smallest norm among W with every margin >= 1
    assert np.linalg.norm(best.W) <= np.linalg.norm(fast.W) * (1 + 1e-9)


# --- 4. exact confirmation ---------------------------------------------------------


def _tiny_unstorable(kind):
    """(X, Y, Z) of a small set that no W stores, by construction or by count."""
    if kind == "coupled_overfull":  # 4 d patterns, far above capacity at d = 4
        X, Y = make_associations(16, 4, random_state=21)
        return X, Y, None
    if kind == "decoupled_overfull":
        X, Y = make_associations(16, 4, random_state=22)
        return X, Y, make_competitors(16, 4, random_state=23)
    if kind == "repeated_target":
        X, Y = make_associations(5, 6, random_state=24)
        Y[3] = Y[0]
        return X, Y, None
    if kind == "input_with_two_targets":
        X, Y = make_associations(4, 3, random_state=25)
        X[2] = X[1]
        return X, Y, None
    if kind == "target_among_competitors":
        X, Y = make_associations(3, 5, random_state=26)
        Z = make_competitors(3, 5, random_state=27)
        Z[1, 0] = Y[1]
        return X, Y, Z
    if kind == "decoupled_shared_input":  # x_0 = x_2, each target the other's rival
        X, Y = make_associations(4, 5, random_state=29)
        Z = make_competitors(4, 5, random_state=30)
        X[2] = X[0]
        Z[0, 1], Z[2, 0] = Y[2], Y[0]
        return X, Y, Z
    if kind == "zero_input":
        X, Y = make_associations(4, 5, random_state=28)
        X[1] = 0.0
        return X, Y, None
    raise AssertionError(kind)


def _assert_exact_certificate(result, X, Y, Z):
    """Re-derive the exact weights and check A^T lambda == 0 in Fractions."""
    assert result.stored is False
    assert result.exact is True
    assert result.certificate == 0.0
    support = confirm_not_storable(X, Y, Z, result.dual_weights)
    assert support is not None
    assert all(weight > 0 for _, weight in support)
    assert sum(weight for _, weight in support) == 1
    total = [[Fraction(0)] * X.shape[1] for _ in range(Y.shape[1])]
    for (mu, k), weight in support:
        rival = _rivals(Y, Z, mu)[k]
        for a in range(Y.shape[1]):
            diff = Fraction(Y[mu, a]) - Fraction(rival[a])
            for i in range(X.shape[1]):
                total[a][i] += weight * diff * Fraction(X[mu, i])
    assert all(v == 0 for row in total for v in row)
    # the float weights returned are those rationals, rounded
    expected = np.zeros_like(result.dual_weights)
    for (mu, k), weight in support:
        expected[mu, k] = float(weight)
    np.testing.assert_allclose(result.dual_weights, expected, rtol=1e-15)


@pytest.mark.parametrize(
    "kind",
    [
        "coupled_overfull",
        "decoupled_overfull",
        "input_with_two_targets",
        "decoupled_shared_input",
    ],
)
def test_exact_confirmation_gives_rational_certificates(kind):
    """exact=True: weights > 0, summing to 1, with A^T lambda == 0 in Fractions."""
    X, Y, Z = _tiny_unstorable(kind)
    _assert_exact_certificate(_ipm(X, Y, Z, exact=True), X, Y, Z)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "kind", ["repeated_target", "target_among_competitors", "zero_input"]
)
def test_exact_confirmation_of_zero_row_certificates(kind):
    """The simplest certificates, weight on a zero row, are exact too."""
    X, Y, Z = _tiny_unstorable(kind)
    _assert_exact_certificate(_ipm(X, Y, Z, exact=True), X, Y, Z)


@pytest.mark.parametrize("constraints", CONSTRAINTS)
def test_exact_confirmation_finds_nothing_for_a_storable_set(constraints):
    """No weights over a storable set can be confirmed, and the verdict stays stored."""
    X, Y = make_associations(5, 5, random_state=30)
    Z = _competitors(constraints, 5, 5, seed=31)
    result = _ipm(X, Y, Z, exact=True)
    _assert_stored(result, X, Y, Z)
    assert result.exact is False
    rng = np.random.default_rng(32)
    for _ in range(5):
        weights = rng.random((5, 4))
        assert confirm_not_storable(X, Y, Z, weights / weights.sum()) is None


def test_exact_confirmation_refuses_d_above_6():
    X, Y = make_associations(30, 7, random_state=33)
    with pytest.raises(ValueError, match=r"d <= 6; got d=7"):
        _ipm(X, Y, exact=True)


# --- 5. degenerate input -------------------------------------------------------


@pytest.mark.parametrize("constraints", CONSTRAINTS)
@pytest.mark.parametrize("mode", MODES)
def test_duplicate_targets_are_not_storable(constraints, mode):
    """y_4 = y_1 (and, decoupled, a competitor equal to its target): a certificate."""
    X, Y = make_associations(6, 8, random_state=40)
    Y[4] = Y[1]
    Z = _competitors(constraints, 6, 8, seed=41)
    if Z is not None:
        Z[3, 2] = Y[3]
    result = _ipm(X, Y, Z, mode=mode)
    if mode == "max_margin":
        _assert_not_storable(result, X, Y, Z)
        return
    # mode="verdict" stops at weights ~1e-6 from a certificate in plain units
    # (zero rows count with scale 1 in the preconditioned bound, the others
    # with ~3e-4): check they are nearly one and that their bulk sits on rows
    # that are exactly zero, an exact certificate on its own.
    assert result.stored is False
    assert result.certificate <= CERTIFICATE_TOL
    lam = result.dual_weights
    assert lam.min() >= 0
    assert lam.sum() == pytest.approx(1.0)
    assert _certificate_norm(lam, X, Y, Z) <= 1e-5 * _data_scale(X, Y, Z)
    on_zero_rows = sum(
        lam[mu, k]
        for mu in range(X.shape[0])
        for k, r in enumerate(_rivals(Y, Z, mu))
        if not np.any(np.kron(Y[mu] - r, X[mu]))
    )
    assert on_zero_rows >= 1 - 1e-5


@pytest.mark.parametrize("constraints", CONSTRAINTS)
def test_zero_input_is_not_storable(constraints):
    X, Y = make_associations(4, 6, random_state=42)
    X[1] = 0.0
    Z = _competitors(constraints, 4, 6, seed=43)
    _assert_not_storable(_ipm(X, Y, Z), X, Y, Z)


def test_input_paired_with_two_targets_is_not_storable():
    X, Y = make_associations(5, 8, random_state=44)
    X[2] = X[0]
    _assert_not_storable(_ipm(X, Y), X, Y, None)


def test_repeated_input_whose_targets_compete_is_not_storable():
    """Decoupled: x_0 = x_2 and each one's target is the other's competitor."""
    X, Y = make_associations(4, 5, random_state=45)
    Z = make_competitors(4, 5, random_state=46)
    X[2] = X[0]
    Z[0, 1], Z[2, 0] = Y[2], Y[0]
    _assert_not_storable(_ipm(X, Y, Z), X, Y, Z)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("constraints", CONSTRAINTS)
@pytest.mark.parametrize(("d", "p"), [(3, 2), (5, 3), (8, 8), (12, 12)])
def test_at_most_d_generic_patterns_are_stored(d, p, constraints, mode):
    X, Y = make_associations(p, d, random_state=100 + d + p)
    Z = _competitors(constraints, p, d, seed=200 + d + p)
    _assert_stored(_ipm(X, Y, Z, mode=mode), X, Y, Z)


@pytest.mark.parametrize("seed", range(8))
def test_two_scalar_patterns_follow_the_sign_rule(seed):
    """d = 1, p = 2: w stores (x_0, x_1) with y_0 != y_1 iff x_0 x_1 < 0."""
    X, Y = make_associations(2, 1, random_state=seed)
    result = _ipm(X, Y)
    assert result.stored is bool(X[0, 0] * X[1, 0] < 0)
    _assert_verified(result, X, Y, None)


#: (d_in, d_out, p) of the rectangular cases.
RECTANGULAR = [(3, 7, 5), (7, 3, 4), (7, 3, 9), (2, 4, 6)]


def _rectangular(d_in, d_out, p, constraints):
    rng = np.random.default_rng(50 + d_in + d_out + p)
    X = rng.standard_normal((p, d_in))
    Y = rng.standard_normal((p, d_out))
    Z = None if constraints == "coupled" else rng.standard_normal((p, p - 1, d_out))
    return X, Y, Z


@pytest.mark.parametrize(("d_in", "d_out", "p"), RECTANGULAR)
@pytest.mark.parametrize("constraints", CONSTRAINTS)
def test_rectangular_w_agrees_with_clarabel(d_in, d_out, p, constraints):
    """decide serves d_in != d_out: Clarabel's verdict, W of shape (d_out, d_in)."""
    X, Y, Z = _rectangular(d_in, d_out, p, constraints)
    D = difference_tensor(Y, Z)
    result = decide(X, D, solvers=["IPM"], constraints=constraints)
    reference = decide(X, D, solvers=["CLARABEL"], constraints=constraints)
    assert reference.stored is not None
    assert result.stored is reference.stored
    if result.stored:
        assert result.W.shape == (d_out, d_in)
    _assert_verified(result, X, Y, Z)


def test_rectangular_cases_have_both_verdicts():
    """The rectangular cases above are not all alike (so that test can fail)."""
    verdicts = set()
    for case in RECTANGULAR:
        for constraints in CONSTRAINTS:
            X, Y, Z = _rectangular(*case, constraints)
            D = difference_tensor(Y, Z)
            verdicts.add(decide(X, D, solvers=["IPM"], constraints="").stored)
    assert verdicts == {True, False}


# --- 6. the cvxpy front end ---------------------------------------------------


@pytest.mark.parametrize(("p", "seed"), [(6, 60), (12, 61), (14, 62)])
def test_scale_free_front_end_matches_clarabel(p, seed):
    """problem.solve(method=IPM_METHOD) writes W, T, kappa (and the certificate)."""
    X, Y = make_associations(p, 5, random_state=seed)
    D = difference_tensor(Y)
    ours = scale_free_program(X, D)
    assert storage_result_of(ours.problem) is None
    value = ours.problem.solve(method=IPM_METHOD)
    theirs = scale_free_program(X, D)
    theirs.problem.solve(solver="CLARABEL")
    assert ours.problem.status == cp.OPTIMAL
    result = storage_result_of(ours.problem)
    assert isinstance(result, StorageResult)
    assert result.solver == "IPM"
    np.testing.assert_allclose(ours.T.value, ours.W.value @ X.T, atol=1e-12)
    if result.stored:
        assert value == pytest.approx(theirs.problem.value, rel=TOL["kappa_rtol"])
        assert ours.kappa.value == pytest.approx(value)
        assert np.linalg.norm(ours.W.value) == pytest.approx(1.0)
        np.testing.assert_allclose(
            ours.W.value, theirs.W.value, rtol=TOL["max_margin_w_rtol"], atol=1e-5
        )
    else:
        assert abs(theirs.problem.value) <= 1e-7
        assert value == 0.0
        np.testing.assert_array_equal(ours.W.value, 0.0)
        for lam in (
            ours.margin_constraint.dual_value,
            theirs.margin_constraint.dual_value,
        ):
            lam = lam.reshape(D.shape[:2])
            assert lam.min() >= -1e-9
            assert lam.sum() == pytest.approx(1.0, rel=1e-6)
            assert _certificate_norm(lam, X, Y, None) <= 1e-6


def test_front_end_grid_has_both_verdicts():
    """The instances above include a stored and an unstorable one."""
    verdicts = {
        _ipm(*make_associations(p, 5, random_state=s)).stored
        for p, s in [(6, 60), (14, 62)]
    }
    assert verdicts == {True, False}


def test_scale_free_front_end_writes_the_duals_of_a_storable_set():
    X, Y = make_associations(12, 5, random_state=61)
    D = difference_tensor(Y)
    theirs = scale_free_program(X, D)
    theirs.problem.solve(solver="CLARABEL")
    assert theirs.problem.value > 0
    # the IPM's own optimal weights are those duals: only the write-back is missing
    ipm = solve_storage_ipm(X, D)
    np.testing.assert_allclose(
        ipm.weights.ravel(), theirs.margin_constraint.dual_value, atol=1e-4
    )
    ours = scale_free_program(X, D)
    ours.problem.solve(method=IPM_METHOD)
    assert ours.margin_constraint.dual_value is not None
    np.testing.assert_allclose(
        ours.margin_constraint.dual_value,
        theirs.margin_constraint.dual_value,
        atol=1e-4,
    )


def test_max_margin_front_end():
    """Storable: W and value of Clarabel's QP; unstorable: status infeasible."""
    X, Y = make_associations(8, 6, random_state=63)
    D = difference_tensor(Y)
    ours, theirs = max_margin_program(X, D), max_margin_program(X, D)
    value = ours.problem.solve(method=IPM_METHOD)
    theirs.problem.solve(solver="CLARABEL")
    assert ours.problem.status == cp.OPTIMAL
    np.testing.assert_allclose(
        ours.W.value, theirs.W.value, rtol=TOL["max_margin_w_rtol"], atol=1e-6
    )
    assert value == pytest.approx(theirs.problem.value, rel=TOL["max_margin_w_rtol"])
    X[3] = X[5]  # one input, two targets
    D = difference_tensor(Y)
    ours, theirs = max_margin_program(X, D), max_margin_program(X, D)
    assert ours.problem.solve(method=IPM_METHOD) == np.inf
    assert ours.problem.status == cp.INFEASIBLE
    assert ours.W.value is None
    theirs.problem.solve(solver="CLARABEL")
    assert theirs.problem.status == cp.INFEASIBLE


def test_front_end_refuses_other_problems():
    x = cp.Variable()
    with pytest.raises(cp.error.SolverError, match=IPM_METHOD):
        cp.Problem(cp.Minimize(x), [x >= 1]).solve(method=IPM_METHOD)
    X, Y = make_associations(4, 3, random_state=64)
    program = scale_free_program(X, difference_tensor(Y), norm="max")
    with pytest.raises(cp.error.SolverError, match=r"norm='fro'"):
        program.problem.solve(method=IPM_METHOD)


def test_front_end_rejects_unknown_options():
    X, Y = make_associations(4, 3, random_state=65)
    program = scale_free_program(X, difference_tensor(Y))
    with pytest.raises(ValueError, match="the IPM options are 'max_iter'"):
        program.problem.solve(method=IPM_METHOD, max_iters=10)


# --- 7. memory guard and options --------------------------------------------------


def test_memory_guard_of_the_solver():
    X, Y = make_associations(20, 10, random_state=70)
    D = difference_tensor(Y)
    need = estimate_memory(20, 19, 10, 10)
    with pytest.raises(InsufficientMemoryError, match=f"{need / 2**30:.2f} GiB"):
        solve_storage_ipm(X, D, max_memory=need - 1)
    assert solve_storage_ipm(X, D, max_memory=need).memory == need


def test_memory_guard_through_check_storage():
    X, Y = make_associations(10, 6, random_state=71)
    need = estimate_memory(10, 9, 6, 6)
    with pytest.raises(
        InsufficientMemoryError, match=rf"{need / 2**30:.2f} GiB.*\(max_memory\)"
    ):
        check_storage(X, Y, solver="IPM", solver_options={"IPM": {"max_memory": 1000}})
    assert issubclass(InsufficientMemoryError, MemoryError)


def test_memory_estimate_grows_like_d_to_the_fourth():
    """Successive increments of the estimate, doubling d, grow by ~2^4."""
    est = [estimate_memory(50, 49, d, d) for d in (40, 80, 160, 320)]
    for a, b, c in zip(est, est[1:], est[2:], strict=False):
        assert 15 < (c - b) / (b - a) < 17
    assert est[-1] >= 8 * 320**4
    # at fixed d it is linear in p K
    assert estimate_memory(40, 10, 8, 8) < estimate_memory(80, 10, 8, 8)


def test_unknown_ipm_options_are_listed():
    X, Y = make_associations(4, 3, random_state=72)
    with pytest.raises(
        ValueError, match="'bogus'.*" + ", ".join(map(repr, IPM_OPTIONS))
    ):
        check_storage(X, Y, solver="IPM", solver_options={"IPM": {"bogus": 1}})


@pytest.mark.parametrize("n_threads", [1, 2])
def test_n_threads_limits_blas_during_the_solve(n_threads):
    from threadpoolctl import threadpool_info

    X, Y = make_associations(10, 6, random_state=73)
    seen = []

    def stop_stored(W):
        seen.extend(
            i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"
        )
        return True

    result = solve_storage_ipm(
        X,
        difference_tensor(Y),
        stop_stored=stop_stored,
        max_margin=False,
        n_threads=n_threads,
    )
    assert result.status == "stored"
    assert seen
    assert max(seen) <= n_threads
    stored = _ipm(X, Y, solver_options={"IPM": {"n_threads": n_threads}})
    _assert_stored(stored, X, Y, None)


@pytest.mark.parametrize(
    ("option", "error", "match"),
    [
        ({"max_iter": -3}, ValueError, "IPM: max_iter must be an integer >= 0; got -3"),
        ({"max_iter": 1.5}, TypeError, "IPM: max_iter must be an integer >= 0"),
        ({"max_iter": "x"}, TypeError, "IPM: max_iter must be an integer >= 0"),
        ({"max_iter": True}, TypeError, "max_iter .* got True of type bool"),
        ({"n_threads": "a"}, TypeError, "IPM: n_threads must be an integer >= 1"),
        ({"n_threads": 0}, ValueError, "IPM: n_threads must be an integer >= 1; got 0"),
        ({"n_threads": -1}, ValueError, "n_threads must be an integer >= 1; got -1"),
        ({"max_memory": -1}, ValueError, "IPM: max_memory must be a positive"),
        ({"max_memory": "x"}, TypeError, "IPM: max_memory must be a positive"),
        ({"gap_tol": -1}, ValueError, r"IPM: gap_tol must be .* in \(0.0, 1.0\)"),
        ({"gap_tol": 0}, ValueError, r"gap_tol .* in \(0.0, 1.0\); got 0.0"),
        ({"gap_tol": np.nan}, ValueError, r"gap_tol .*; got nan"),
        ({"gap_tol": 10}, ValueError, r"gap_tol .*; got 10.0"),
        ({"gap_tol": "1e-8"}, TypeError, "IPM: gap_tol must be a real number"),
    ],
)
def test_bad_ipm_options_are_refused_with_the_value(option, error, match):
    X, Y = make_associations(6, 4, random_state=75)
    with pytest.raises(error, match=match):
        _ipm(X, Y, solver_options={"IPM": option})
    with pytest.raises(error, match=match):
        solve_storage_ipm(X, difference_tensor(Y), **option)


def test_ipm_options_are_checked_when_another_solver_decides():
    X, Y = make_associations(6, 4, random_state=75)
    with pytest.raises(ValueError, match="max_iter"):
        check_storage(X, Y, solver="ECOS", solver_options={"IPM": {"max_iter": -3}})


def test_max_iter_zero_is_one_look_at_the_starting_point():
    X, Y = make_associations(6, 4, random_state=75)
    result = solve_storage_ipm(X, difference_tensor(Y), max_iter=0)
    assert result.iterations == 0
    assert result.status == "max_iter"


@pytest.mark.parametrize("gap_tol", [0.5, 1e-3])
def test_a_loose_gap_tol_does_not_claim_the_max_margin_matrix(gap_tol):
    X, Y = make_associations(12, 5, random_state=2)
    loose = _ipm(X, Y, solver_options={"IPM": {"gap_tol": gap_tol}})
    _assert_stored(loose, X, Y, None)
    assert loose.max_margin is False
    assert loose.support is None
    assert loose.attempts[-1].solver_status == "converged"
    run = solve_storage_ipm(X, difference_tensor(Y), gap_tol=gap_tol)
    assert run.status == "converged"
    assert run.gap <= gap_tol
    # at the MAX_MARGIN_GAP cut the last W is the max-margin matrix again
    tight = _ipm(X, Y, solver_options={"IPM": {"gap_tol": ipm.MAX_MARGIN_GAP}})
    assert tight.max_margin is True
    np.testing.assert_allclose(
        tight.W, _ipm(X, Y).W, rtol=TOL["max_margin_w_rtol"], atol=1e-6
    )


def test_max_iter_reaches_the_solver():
    """One Newton step cannot prove a set near capacity stored: undecided."""
    X, Y = make_associations(18, 8, random_state=74)
    with pytest.warns(SolverWarning, match="undecided"):
        result = _ipm(X, Y, solver_options={"IPM": {"max_iter": 1}})
    assert result.stored is None
    for attempt in result.attempts:
        assert attempt.solver_status == "max_iter"
        assert attempt.message.startswith("1 iterations")
    _assert_stored(_ipm(X, Y), X, Y, None)


def test_a_verdict_run_ends_at_the_first_accepted_check():
    X, Y = make_associations(10, 6, random_state=75)
    offers = []

    def stop_certified(lam):
        offers.append(lam)
        return True

    result = solve_storage_ipm(
        X,
        difference_tensor(Y),
        stop_stored=lambda W: True,
        stop_certified=stop_certified,
        max_margin=False,
    )
    assert result.status == "stored"
    assert offers == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interior_iterates_are_not_polished(monkeypatch, seed):
    """No NNLS polish of dual iterates: the IPM's own bound gets under the cut.

    At d = 12, p = 44 the first dual iterate offered weighs all 1892 rows;
    polishing it took longer than the iterations that certify (at d = 40 a
    polish of 6127 rows took 66 s, the IPM's whole run 2 s without it).
    """
    X, Y = make_associations(44, 12, random_state=seed)
    sizes = []
    nnls = engine.scipy.optimize.nnls

    def recording_nnls(A, b, **kwargs):
        sizes.append(A.shape[1])
        return nnls(A, b, **kwargs)

    monkeypatch.setattr(engine.scipy.optimize, "nnls", recording_nnls)
    for mode in MODES:
        result = _ipm(X, Y, mode=mode)
        _assert_not_storable(result, X, Y, None)
    assert sizes == []


def test_the_sharpest_weights_are_polished_when_the_run_ends_undecided():
    """A run stopped before its bound reached the cut is settled by NNLS."""
    X, Y = make_associations(50, 12, random_state=3)
    result = _ipm(X, Y, mode="verdict", solver_options={"IPM": {"max_iter": 0}})
    (attempt,) = result.attempts
    assert attempt.solver_status == "max_iter"
    _assert_not_storable(result, X, Y, None)


def test_check_storage_asks_cvxpy_for_its_solvers_once(monkeypatch):
    calls = []
    original = cp.installed_solvers

    def counted():
        calls.append(1)
        return original()

    monkeypatch.setattr(cp, "installed_solvers", counted)
    X, Y = make_associations(4, 3, random_state=76)
    _assert_stored(_ipm(X, Y), X, Y, None)
    assert len(calls) <= 1


# --- 8. a misbehaving structured solver ---------------------------------------------


def _faulty_ipm(fault):
    """Wrap the engine's solve_storage_ipm so that it misbehaves as told.

    ``wrong_w``: every W it shows the engine (to the checks and in its result) is
    negated. ``garbage_weights``: every dual iterate it shows is a random point
    of the simplex. ``lying``: both, and the run claims "not_storable".
    """
    original = engine.solve_storage_ipm

    def run(X, D, *, stop_stored=None, stop_certified=None, **kwargs):
        garbage = np.random.default_rng(80).random(D.shape[:2])
        garbage /= garbage.sum()
        bad_w = fault in ("wrong_w", "lying")
        bad_lam = fault in ("garbage_weights", "lying")
        out = original(
            X,
            D,
            stop_stored=(lambda W: stop_stored(-W)) if bad_w else stop_stored,
            stop_certified=(lambda lam: stop_certified(garbage))
            if bad_lam
            else stop_certified,
            **kwargs,
        )
        if bad_w:
            out = dataclasses.replace(out, W=-out.W)
        if bad_lam:
            out = dataclasses.replace(out, weights=garbage)
        if fault == "lying":
            out = dataclasses.replace(out, status="not_storable")
        return out

    return run


def _storable_and_not():
    X, Y = make_associations(6, 6, random_state=81)
    Xn, Yn = make_associations(5, 8, random_state=82)
    Xn[2] = Xn[0]
    return [(X, Y, True), (Xn, Yn, False)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", ["wrong_w", "garbage_weights"])
def test_misbehaving_ipm_is_never_believed(monkeypatch, fault, mode):
    """A bad W or bad weights give undecided or a verified verdict, never wrong."""
    monkeypatch.setattr(engine, "solve_storage_ipm", _faulty_ipm(fault))
    for X, Y, truth in _storable_and_not():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverWarning)
            alone = _ipm(X, Y, mode=mode)
            helped = check_storage(X, Y, solver="IPM", mode=mode)
        assert alone.stored in (truth, None)
        assert helped.stored is truth
        _assert_verified(helped, X, Y, None)
        if alone.stored is not None:
            _assert_verified(alone, X, Y, None)
        else:
            assert helped.solver != "IPM"
    # a negated W can never prove storage; its verdict must come from elsewhere
    if fault == "wrong_w":
        X, Y, _ = _storable_and_not()[0]
        with pytest.warns(SolverWarning, match="the verdict came from"):
            assert check_storage(X, Y, solver="IPM", mode=mode).solver != "IPM"


@pytest.mark.parametrize("mode", MODES)
def test_ipm_claiming_not_storable_without_evidence_is_not_believed(monkeypatch, mode):
    monkeypatch.setattr(engine, "solve_storage_ipm", _faulty_ipm("lying"))
    X, Y, _ = _storable_and_not()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        result = _ipm(X, Y, mode=mode)
    assert result.stored is not False
