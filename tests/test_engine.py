"""Storage verdicts, their evidence, and the engine's handling of solvers."""

import dataclasses
import warnings

import cvxpy as cp
import numpy as np
import pytest
from conftest import REFERENCE, SOLVER_PARAMS, TOL, reference_instance

import assoc_cvx.engine as engine
from assoc_cvx import (
    SolverError,
    SolverWarning,
    check_storage,
    make_associations,
    make_competitors,
)
from assoc_cvx.programs import difference_tensor, max_margin_program

CONSTRAINTS = ["coupled", "decoupled"]


def _competitors(constraints, p, d, seed):
    if constraints == "coupled":
        return None
    return make_competitors(p, d, random_state=seed)


def _margins_by_loops(W, X, Y, Z):
    """Every margin, computed one constraint at a time (independent of the package)."""
    p = X.shape[0]
    out = []
    for mu in range(p):
        rivals = [Y[nu] for nu in range(p) if nu != mu] if Z is None else Z[mu]
        out.extend((Y[mu] - r) @ W @ X[mu] for r in rivals)
    return np.array(out)


def _certificate_norm(weights, X, Y, Z):
    """Norm of sum_i lambda_i a_i, rows a_i = kron(y_mu - rival, x_mu) one by one."""
    p = X.shape[0]
    total = np.zeros(X.shape[1] * Y.shape[1])
    for mu in range(p):
        rivals = [Y[nu] for nu in range(p) if nu != mu] if Z is None else Z[mu]
        for k, r in enumerate(rivals):
            total += weights[mu, k] * np.kron(Y[mu] - r, X[mu])
    return np.linalg.norm(total)


def _assert_stored(result, X, Y, Z):
    assert result.stored is True
    assert result.status == "stored"
    m = _margins_by_loops(result.W, X, Y, Z)
    assert m.min() == pytest.approx(1.0, rel=TOL["unit_margin_rtol"])
    assert result.margin > 0
    assert result.margin == pytest.approx(
        m.min() / np.linalg.norm(result.W), rel=TOL["unit_margin_rtol"]
    )
    if Z is None:
        scores = X @ result.W.T @ Y.T
        np.testing.assert_array_equal(scores.argmax(axis=1), np.arange(X.shape[0]))


def _assert_not_storable(result, X, Y, Z):
    assert result.stored is False
    assert result.status == "not_storable"
    assert result.W is None
    lam = result.dual_weights
    assert lam.min() >= 0
    assert lam.sum() == pytest.approx(1.0)
    scale = np.sqrt(np.mean(np.sum(X**2, 1))) * np.sqrt(
        np.mean(np.sum(difference_tensor(Y, Z) ** 2, -1))
    )
    bound = _certificate_norm(lam, X, Y, Z)
    assert bound <= engine.CERTIFICATE_TOL * scale
    assert bound == pytest.approx(result.margin_upper, rel=1e-6, abs=1e-15)


@pytest.mark.parametrize("solver", SOLVER_PARAMS)
@pytest.mark.parametrize("constraints", CONSTRAINTS)
@pytest.mark.parametrize(("d", "p"), [(5, 2), (6, 6), (10, 7)])
def test_at_most_d_generic_patterns_are_stored(solver, constraints, d, p):
    X, Y = make_associations(p, d, random_state=p + d)
    Z = _competitors(constraints, p, d, seed=p * d)
    result = check_storage(X, Y, competitors=Z, solver=solver, fallback=False)
    assert result.solver == solver
    _assert_stored(result, X, Y, Z)


@pytest.mark.parametrize("solver", SOLVER_PARAMS)
@pytest.mark.parametrize("constraints", CONSTRAINTS)
def test_repeated_target_is_not_storable(solver, constraints):
    X, Y = make_associations(6, 8, random_state=1)
    Y[4] = Y[1]
    Z = _competitors(constraints, 6, 8, seed=2)
    if Z is not None:
        Z[3, 2] = Y[3]  # a competitor equal to the target
    result = check_storage(X, Y, competitors=Z, solver=solver, fallback=False)
    _assert_not_storable(result, X, Y, Z)


@pytest.mark.parametrize("solver", SOLVER_PARAMS)
def test_input_paired_with_two_targets_is_not_storable(solver):
    X, Y = make_associations(5, 8, random_state=3)
    X[2] = X[0]
    result = check_storage(X, Y, solver=solver, fallback=False)
    _assert_not_storable(result, X, Y, None)


def test_zero_input_is_not_storable():
    X, Y = make_associations(4, 6, random_state=4)
    X[1] = 0.0
    _assert_not_storable(check_storage(X, Y), X, Y, None)


@pytest.mark.parametrize("entry", REFERENCE, ids=lambda e: e["name"])
def test_reference_verdicts_at_every_p(entry):
    for p, expected in entry["verdicts"].items():
        X, Y, Z = reference_instance(entry, p)
        result = check_storage(X, Y, competitors=Z)
        assert result.stored is expected, p
        if expected:
            _assert_stored(result, X, Y, Z)
        else:
            _assert_not_storable(result, X, Y, Z)
        if p == entry["critical_p"]:
            assert result.margin == pytest.approx(
                entry["kappa_at_critical"], rel=TOL["kappa_rtol"]
            )


@pytest.mark.parametrize("solver", SOLVER_PARAMS)
@pytest.mark.parametrize("entry", REFERENCE[::3], ids=lambda e: e["name"])
def test_each_solver_is_never_wrong_at_the_threshold(solver, entry):
    decided = 0
    for p in (entry["critical_p"], entry["critical_p"] + 1):
        X, Y, Z = reference_instance(entry, p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverWarning)
            result = check_storage(X, Y, competitors=Z, solver=solver, fallback=False)
        if result.stored is not None:
            decided += 1
            assert result.stored is entry["verdicts"][p]
    # SCS (first order) may leave one undecided; the others must decide both.
    assert decided >= (1 if solver == "SCS" else 2)


def test_verdicts_are_monotone_along_nested_instances():
    from assoc_cvx.patterns import NestedPool

    for constraints in CONSTRAINTS:
        pool = NestedPool(5, constraints, "gaussian", np.random.SeedSequence(11))
        verdicts = [
            check_storage(*pool(p)[:2], competitors=pool(p)[2]).stored
            for p in range(2, 22)
        ]
        assert None not in verdicts
        first_false = verdicts.index(False)
        assert all(verdicts[:first_false])
        assert not any(verdicts[first_false:])


@pytest.mark.parametrize("factor", [1e-3, 1e3])
@pytest.mark.parametrize("which", ["X", "Y"])
@pytest.mark.parametrize("entry", REFERENCE[:4], ids=lambda e: e["name"])
def test_verdict_is_invariant_to_scaling(entry, which, factor):
    for p in (entry["critical_p"], entry["critical_p"] + 1):
        X, Y, Z = reference_instance(entry, p)
        if which == "X":
            X = X * factor
        else:
            Y = Y * factor
            Z = None if Z is None else Z * factor
        result = check_storage(X, Y, competitors=Z)
        assert result.stored is entry["verdicts"][p]


@pytest.mark.parametrize("entry", REFERENCE[:4], ids=lambda e: e["name"])
def test_verdict_is_invariant_to_permuting_patterns(entry):
    perm = np.random.default_rng(5).permutation(entry["critical_p"] + 1)
    for p in (entry["critical_p"], entry["critical_p"] + 1):
        X, Y, Z = reference_instance(entry, p)
        order = perm[perm < p]
        Zp = None if Z is None else Z[order]
        result = check_storage(X[order], Y[order], competitors=Zp)
        assert result.stored is entry["verdicts"][p]


def test_returned_w_is_the_max_margin_solution():
    X, Y = make_associations(8, 6, random_state=7)
    result = check_storage(X, Y)
    program = max_margin_program(X, difference_tensor(Y))
    program.problem.solve(solver="CLARABEL")
    assert program.problem.status == cp.OPTIMAL
    np.testing.assert_allclose(
        result.W, program.W.value, rtol=TOL["max_margin_w_rtol"], atol=1e-6
    )


# --- solver handling ----------------------------------------------------------


def test_unknown_solver_lists_the_valid_ones():
    X, Y = make_associations(3, 3, random_state=0)
    with pytest.raises(ValueError, match="solver must be one of 'auto', 'IPM', 'ECOS'"):
        check_storage(X, Y, solver="gurobi")


def test_solver_names_are_case_insensitive():
    X, Y = make_associations(3, 3, random_state=0)
    assert check_storage(X, Y, solver="ecos", fallback=False).solver == "ECOS"


def test_missing_solver_names_the_installed_ones(monkeypatch):
    monkeypatch.setattr(cp, "installed_solvers", lambda: ["ECOS"])
    X, Y = make_associations(3, 3, random_state=0)
    with pytest.raises(SolverError, match=r"CLARABEL is not installed \(pip install"):
        check_storage(X, Y, solver="CLARABEL")


def _faulty(fault, bad_solver="ECOS"):
    """Wrap the engine's solve step so that one solver misbehaves."""
    original = engine.solve_program

    def solve_once(program, name, options):
        if name != bad_solver:
            return original(program, name, options)
        if fault == "raises":
            return engine.SolverRun("error", 0.0, 0.0, "SolverError: injected")
        out = original(program, name, options)
        if fault == "inaccurate":
            return dataclasses.replace(out, status=cp.OPTIMAL_INACCURATE)
        if fault == "wrong_w":
            program.W.value = -program.W.value
        if fault == "wrong_duals":
            lam = program.margin_constraint.dual_value
            program.margin_constraint.dual_value[:] = 0.0
            program.margin_constraint.dual_value[0] = lam.max() + 1.0
        return out

    return solve_once


@pytest.mark.parametrize("fault", ["raises", "inaccurate", "wrong_w"])
def test_misbehaving_solver_falls_back_on_a_storable_instance(monkeypatch, fault):
    monkeypatch.setattr(engine, "solve_program", _faulty(fault))
    X, Y = make_associations(6, 6, random_state=8)
    with pytest.warns(SolverWarning, match="requested solver ECOS did not decide"):
        result = check_storage(X, Y, solver="ECOS")
    assert result.attempts[0].solver == "ECOS"
    assert result.attempts[0].verdict == "undecided"
    assert result.solver != "ECOS"
    _assert_stored(result, X, Y, None)


@pytest.mark.parametrize("fault", ["raises", "inaccurate", "wrong_duals"])
def test_misbehaving_solver_never_gives_a_wrong_no(monkeypatch, fault):
    monkeypatch.setattr(engine, "solve_program", _faulty(fault))
    X, Y = make_associations(5, 8, random_state=3)
    X[2] = X[0]
    with pytest.warns(SolverWarning, match="undecided after ECOS"):
        result = check_storage(X, Y, solver="ECOS", fallback=False)
    assert result.stored is None
    assert result.status == "undecided"
    assert result.W is None
    with pytest.warns(SolverWarning, match="the verdict came from IPM"):
        result = check_storage(X, Y, solver="ECOS")
    _assert_not_storable(result, X, Y, None)


def test_solver_options_reach_the_solver():
    X, Y = make_associations(20, 5, random_state=9)
    with pytest.warns(SolverWarning, match="user_limit"):
        result = check_storage(
            X,
            Y,
            solver="ECOS",
            fallback=False,
            solver_options={"ecos": {"max_iters": 1}},
        )
    assert result.stored is None


def test_timings_are_recorded():
    X, Y = make_associations(10, 6, random_state=10)
    result = check_storage(X, Y, solver="CLARABEL", fallback=False)
    assert result.compile_time > 0
    assert result.solve_time > 0
    assert result.attempts[0].solve_time == result.solve_time


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("X", "Y", "match"),
    [
        (np.full((3, 3), np.nan), np.ones((3, 3)), "X contains NaN or infinity"),
        (np.ones((3, 3)), np.full((3, 3), np.inf), "Y contains NaN or infinity"),
        (np.ones(3), np.ones((3, 3)), "X must be a 2-D array"),
        (np.ones((3, 3, 1)), np.ones((3, 3)), "X must be a 2-D array"),
        (np.ones((3, 3)), np.ones((4, 3)), "same shape"),
        (np.ones((3, 3)), np.ones((3, 4)), "same shape"),
        (np.ones((1, 3)), np.ones((1, 3)), "At least 2 patterns"),
        (np.ones((2, 0)), np.ones((2, 0)), "at least one feature"),
    ],
)
def test_bad_patterns_raise(X, Y, match):
    with pytest.raises(ValueError, match=match):
        check_storage(X, Y)


def test_non_numeric_patterns_raise():
    with pytest.raises(TypeError, match="X must be an array of real numbers"):
        check_storage([["a", "b"], ["c", "d"]], np.ones((2, 2)))


@pytest.mark.parametrize("shape", [(3, 2, 4), (4, 2, 3), (3, 0, 3), (3, 3)])
def test_competitors_of_wrong_shape_raise(shape):
    X, Y = make_associations(3, 3, random_state=0)
    with pytest.raises(ValueError, match="competitors must"):
        check_storage(X, Y, competitors=np.ones(shape))


def test_competitors_with_nan_raise():
    X, Y = make_associations(3, 3, random_state=0)
    Z = make_competitors(3, 3, random_state=0)
    Z[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="competitors contains NaN"):
        check_storage(X, Y, competitors=Z)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"certificate_tol": 0.0}, ValueError, "certificate_tol must be a positive"),
        ({"solver_options": {"FOO": {}}}, ValueError, "not one of"),
        ({"solver_options": ["ECOS"]}, TypeError, "solver_options must be a dict"),
        ({"solver": 3}, ValueError, "solver must be one of"),
    ],
)
def test_bad_options_raise(kwargs, error, match):
    X, Y = make_associations(3, 3, random_state=0)
    with pytest.raises(error, match=match):
        check_storage(X, Y, **kwargs)


# --- badly conditioned but storable data (found storable via preconditioning) --


def _badly_conditioned(kind):
    X, Y = make_associations(6, 5, random_state=12)
    if kind == "tiny_input":
        X[0] *= 1e-8
    elif kind == "feature_units":
        X[:, 0] *= 1e8
    elif kind == "close_targets":
        Y[1] = Y[0] + 1e-8 * (Y[1] - Y[0])
    return X, Y


@pytest.mark.parametrize("kind", ["tiny_input", "feature_units", "close_targets"])
def test_badly_conditioned_storable_sets_are_found_storable(kind):
    X, Y = make_associations(6, 5, random_state=12)
    assert check_storage(X, Y).stored is True
    Xb, Yb = _badly_conditioned(kind)
    result = check_storage(Xb, Yb, solver="ECOS", fallback=False)
    assert result.stored is True
    assert result.max_margin is (result.attempts[-1].formulation == "plain")
    assert _margins_by_loops(result.W, Xb, Yb, None).min() > 0


def test_plain_verdicts_return_the_max_margin_matrix():
    X, Y = make_associations(6, 5, random_state=12)
    result = check_storage(X, Y, solver="ECOS")
    assert result.max_margin is True
    assert [a.formulation for a in result.attempts] == ["plain"]
    # any dual weights bound kappa* from above, any W from below
    assert result.margin_upper >= result.margin_lower > 0
    assert np.isnan(result.certificate)  # no certificate is computed when stored


@pytest.mark.parametrize("factor", [1e-160, 1e154])
def test_patterns_beyond_float64_margins_raise(factor):
    X, Y = make_associations(4, 4, random_state=0)
    with pytest.raises(ValueError, match=r"outside \[1e-100, 1e\+100\]"):
        check_storage(X * factor, Y)


def test_sparse_and_complex_patterns_raise():
    import scipy.sparse as sp

    X, Y = make_associations(4, 4, random_state=0)
    with pytest.raises(TypeError, match="X must be a dense array"):
        check_storage(sp.csr_matrix(X), Y)
    with pytest.raises(TypeError, match="Y must be real"):
        check_storage(X, Y + 1j)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"ECOS": {"solver": "SCS"}}, "sets solver, which assoc_cvx controls"),
        ({"ECOS": {"bogus_setting": 1}}, "ECOS rejected the options"),
    ],
)
def test_options_a_solver_cannot_take_raise(options, match):
    X, Y = make_associations(4, 4, random_state=0)
    with pytest.raises(ValueError, match=match):
        check_storage(X, Y, solver="ECOS", solver_options=options)


def test_fallback_must_be_a_bool():
    X, Y = make_associations(4, 4, random_state=0)
    with pytest.raises(TypeError, match="fallback must be True or False"):
        check_storage(X, Y, fallback="no")


def test_rejected_highs_option_is_not_silently_ignored():
    X, Y = make_associations(4, 4, random_state=0)
    with pytest.warns(SolverWarning, match="requested solver HIGHS did not decide"):
        result = check_storage(
            X, Y, solver="HIGHS", solver_options={"HIGHS": {"time_limt": 5}}
        )
    assert result.solver != "HIGHS"


@pytest.mark.parametrize("exponent", [0, 20, 60])
@pytest.mark.parametrize("seed", range(5))
def test_badly_scaled_unstorable_sets_are_never_stored(seed, exponent):
    # x_1 = 3 x_0 (exactly, scaled by a power of two) with distinct targets:
    # no linear map stores both, whatever the scale of x_0.
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    _, Y = make_associations(5, 4, random_state=seed)
    x0 = np.ldexp(Q[0], -exponent)
    X = np.vstack([x0, 3 * x0, Q[1:]])
    result = check_storage(X, Y)
    assert result.stored is False
    # an independent, scale-free reading of the certificate: the weighted sum
    # of the constraint rows is tiny next to the weighted sum of their norms
    lam = result.dual_weights
    rows_norm = 0.0
    for mu in range(5):
        for k, nu in enumerate(n for n in range(5) if n != mu):
            rows_norm += lam[mu, k] * np.linalg.norm(np.kron(Y[mu] - Y[nu], X[mu]))
    assert _certificate_norm(lam, X, Y, None) <= 1e-6 * rows_norm


@pytest.mark.parametrize("eps", [1e-7, 1e-9, 1e-11])
def test_storable_after_feature_and_row_rescaling(eps):
    # X is a feature-and-row rescaling of [[1, 0], [0, 1], [1, 1]], which is
    # storable; W_lim @ diag(1, 1 / eps) stores X with the same margins.
    Y = np.array([[1.0, 0.0], [-0.5, 0.9], [-0.5, -0.9]])
    X = np.array([[1.0, 0.0], [0.3, 1.0], [1.0, eps]])
    result = check_storage(X, Y)
    assert result.stored is True
    assert _margins_by_loops(result.W, X, Y, None).min() > 0


def test_tiny_input_row_is_stored_and_recalled():
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    _, Y = make_associations(4, 4, random_state=1)
    X = Q.copy()
    X[0] *= 1e-40
    result = check_storage(X, Y)
    assert result.stored is True
    scores = X @ result.W.T @ Y.T
    np.testing.assert_array_equal(scores.argmax(axis=1), np.arange(4))
    assert _margins_by_loops(result.W, X, Y, None).min() == pytest.approx(1.0)


def test_margins_below_the_float64_rounding_bound_are_checked_exactly():
    # Storable by construction (independent inputs, affinely independent
    # targets), but so badly scaled that the margins of the solver's W sit
    # below the worst-case rounding bound of their float64 computation.
    X = np.array(
        [
            [3.8399997711181641e02, -2.2888183593750000e-05, -1.5732480000228882e06],
            [-3.8400003051757812e02, -3.0517578125000000e-05, -2.0967680000305176e06],
            [1.2799999237060547e02, -7.6293945312500000e-06, -2.0972800000076294e06],
        ]
    )
    Y = np.array(
        [
            [-1.3421772800000384e08, -1.3421772800000381e08, -6.7108864000003785e07],
            [2.6843545600000000e08, 2.6843545600000000e08, 1.3421772800000000e08],
            [-5.3687091199999905e08, -5.3687091199999905e08, -2.6843545599999905e08],
        ]
    )
    result = check_storage(X, Y)
    assert result.stored is True
    exact = [
        engine._exact_margin(Y[mu] - Y[nu], result.W, X[mu])
        for mu in range(3)
        for nu in range(3)
        if nu != mu
    ]
    assert min(exact) > 0


def test_targets_closer_than_float64_margins_raise():
    X, Y = make_associations(3, 3, random_state=0)
    Y[0] = [1.0, 0.0, 0.0]
    Y[1] = [1.0, 0.0, 1e-200]
    with pytest.raises(ValueError, match="differ by a vector whose largest entry"):
        check_storage(X, Y)
