"""Tests of the LinearAssociativeMemory estimator."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import (
    CVXPY_SOLVER_PARAMS,
    INSTALLED_SOLVERS,
    SOLVER_PARAMS,
    TOL,
    solver_params,
)
from sklearn.utils.estimator_checks import parametrize_with_checks

import assoc_cvx.estimator
from assoc_cvx import LinearAssociativeMemory, make_associations
from assoc_cvx._validation import check_positive
from assoc_cvx.engine import SOLVER_OPTIONS, SOLVERS, Attempt, SolverRun
from assoc_cvx.exceptions import SolverError, StorageWarning
from assoc_cvx.programs import (
    difference_tensor,
    margins,
    max_margin_program,
    soft_margin_program,
)

#: Solver of the reference solves; clarabel is a dependency of cvxpy itself.
REFERENCE_SOLVER = "CLARABEL"


def _rng(seed):
    return np.random.default_rng(seed)


def _unit_rows(A):
    """``A`` with every row divided by its largest absolute entry."""
    return A / np.abs(A).max(axis=1, keepdims=True)


def _assert_close(W, W_ref, rtol):
    """Assert ``||W - W_ref||_F <= rtol * ||W_ref||_F``."""
    distance = np.linalg.norm(W - W_ref)
    assert distance <= rtol * np.linalg.norm(W_ref), distance


def _stores_directly(W, X, Y):
    """Whether every row of ``X W^T Y^T`` has its strict maximum on the diagonal."""
    S = X @ W.T @ Y.T
    off = np.where(np.eye(len(S), dtype=bool), -np.inf, S)
    return bool(np.all(np.diag(S) > off.max(axis=1)))


@pytest.mark.filterwarnings("ignore::assoc_cvx.exceptions.StorageWarning")
@parametrize_with_checks(
    [LinearAssociativeMemory(), LinearAssociativeMemory("hebbian")]
)
def test_sklearn_estimator_checks(estimator, check):
    # Class-label targets repeat values, so max_margin fits go to the soft
    # margin and warn; the warnings are the expected behaviour here.
    check(estimator)


@pytest.mark.parametrize("solver", solver_params("fro"))
@pytest.mark.parametrize(("n_patterns", "n_features", "seed"), [(6, 6, 0), (8, 12, 1)])
def test_max_margin_stores_generic_patterns(solver, n_patterns, n_features, seed):
    X, Y = make_associations(n_patterns, n_features, random_state=_rng(seed))
    memory = LinearAssociativeMemory(solver=solver).fit(X, Y)

    assert memory.stored_ is True
    assert memory.solver_ == solver
    assert memory.score(X, Y) == 1.0
    np.testing.assert_array_equal(memory.predict(X), Y)

    m = margins(memory.coef_, X, difference_tensor(Y))
    assert m.min() == pytest.approx(1.0, rel=TOL["unit_margin_rtol"])
    # The max-margin W has norm 1 / kappa*.
    assert memory.margin_ == pytest.approx(
        1 / np.linalg.norm(memory.coef_), rel=TOL["unit_margin_rtol"]
    )

    reference = max_margin_program(X, difference_tensor(Y))
    reference.problem.solve(solver=REFERENCE_SOLVER)
    _assert_close(memory.coef_, reference.W.value, TOL["max_margin_w_rtol"])


def test_max_margin_rectangular():
    # Six generic targets in 7 dimensions are all vertices of their hull and
    # the inputs are independent, so the set is storable.
    rng = _rng(2)
    X = rng.standard_normal((6, 9))
    Y = rng.standard_normal((6, 7))
    memory = LinearAssociativeMemory().fit(X, Y)
    assert memory.coef_.shape == (7, 9)
    assert memory.n_features_in_ == 9
    assert memory.stored_ is True
    assert _stores_directly(memory.coef_, X, Y)
    np.testing.assert_array_equal(memory.predict(X), Y)


@pytest.mark.parametrize("solver", solver_params("max"))
def test_linear_program_solver_gives_a_storing_matrix_and_a_margin_lower_bound(
    solver,
):
    X, Y = make_associations(8, 10, random_state=_rng(3))
    frobenius = LinearAssociativeMemory(solver=REFERENCE_SOLVER).fit(X, Y)
    memory = LinearAssociativeMemory(solver=solver).fit(X, Y)
    assert memory.stored_ is True
    assert memory.solver_ == solver
    m = margins(memory.coef_, X, difference_tensor(Y))
    assert m.min() == pytest.approx(1.0, rel=TOL["unit_margin_rtol"])
    assert 0 < memory.margin_ <= frobenius.margin_ * (1 + TOL["kappa_rtol"])


def test_repeated_target_is_not_storable():
    X, Y = make_associations(8, 10, random_state=_rng(4))
    Y[5] = Y[2]
    memory = LinearAssociativeMemory(C=100.0)
    with pytest.warns(StorageWarning, match="cannot all be stored by a linear map"):
        memory.fit(X, Y)

    assert memory.stored_ is False
    assert memory.storage_result_.status == "not_storable"
    assert memory.coef_.shape == (10, 10)
    assert np.all(np.isfinite(memory.coef_))
    assert np.linalg.norm(memory.coef_) > 0
    # The two identical targets tie, every other association is recalled.
    assert memory.score(X, Y) == pytest.approx(6 / 8)
    np.testing.assert_array_equal(memory.predict(X), Y)
    assert memory.margin_ <= 0


def test_target_inside_the_hull_is_not_storable():
    X, Y = make_associations(6, 9, random_state=_rng(14))
    Y[5] = (Y[0] + Y[1] + Y[2]) / 3
    memory = LinearAssociativeMemory()
    with pytest.warns(StorageWarning, match="cannot all be stored by a linear map"):
        memory.fit(X, Y)
    assert memory.stored_ is False
    assert memory.storage_result_.dual_weights is not None
    assert not _stores_directly(memory.coef_, X, Y)


@pytest.mark.parametrize(
    ("n_features", "n_patterns", "expected"), [(40, 4, True), (8, 60, False)]
)
def test_hebbian_storage_matches_numpy(n_features, n_patterns, expected):
    X, Y = make_associations(n_patterns, n_features, random_state=_rng(5))
    memory = LinearAssociativeMemory("hebbian")
    if expected:
        memory.fit(X, Y)
    else:
        with pytest.warns(StorageWarning, match="Hebbian matrix recalls"):
            memory.fit(X, Y)

    np.testing.assert_allclose(memory.coef_, Y.T @ X)
    assert memory.stored_ is _stores_directly(Y.T @ X, X, Y)
    assert memory.stored_ is expected
    assert memory.storage_result_ is None
    assert (memory.margin_ > 0) is expected
    assert (memory.score(X, Y) == 1.0) is expected


def test_one_dimensional_targets():
    rng = _rng(6)
    X = rng.standard_normal((2, 3))
    y = np.array([1.5, -0.5])
    memory = LinearAssociativeMemory().fit(X, y)
    assert memory.stored_ is True
    assert memory.coef_.shape == (1, 3)
    prediction = memory.predict(X)
    assert prediction.shape == (2,)
    np.testing.assert_array_equal(prediction, y)

    # With three distinct scalar targets the middle one can never win.
    X3 = rng.standard_normal((3, 3))
    with pytest.warns(StorageWarning, match="cannot all be stored"):
        memory.fit(X3, np.array([0.0, 1.0, 2.0]))
    assert memory.stored_ is False


def test_decision_function_and_predict_agree():
    X, Y = make_associations(6, 8, random_state=_rng(7))
    memory = LinearAssociativeMemory().fit(X, Y)
    X_new = _rng(8).standard_normal((5, 8))
    scores = memory.decision_function(X_new)
    assert scores.shape == (5, 6)
    np.testing.assert_allclose(scores, X_new @ memory.coef_.T @ Y.T)
    np.testing.assert_array_equal(memory.predict(X_new), Y[np.argmax(scores, axis=1)])
    np.testing.assert_array_equal(
        np.argmax(memory.decision_function(X), axis=1), range(6)
    )


def test_score_uses_the_targets_it_is_given():
    X, Y = make_associations(6, 8, random_state=_rng(9))
    memory = LinearAssociativeMemory().fit(X, Y)
    assert memory.score(X, Y) == 1.0
    # Swapping two targets makes exactly those two associations fail.
    swapped = Y[[1, 0, 2, 3, 4, 5]]
    assert memory.score(X, swapped) == pytest.approx(4 / 6)
    # A repeated target row ties with its copy and is never counted.
    repeated = Y.copy()
    repeated[3] = repeated[4]
    assert memory.score(X, repeated) == pytest.approx(4 / 6)


def _data(p=5, d=3):
    return make_associations(p, d, random_state=_rng(10))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(
            lambda X, Y: (np.where(X == X[0, 0], np.nan, X), Y),
            "Input X contains NaN",
            id="nan-in-X",
        ),
        pytest.param(
            lambda X, Y: (X, np.where(Y == Y[1, 1], np.nan, Y)),
            "Input y contains NaN",
            id="nan-in-y",
        ),
        pytest.param(
            lambda X, Y: (X, np.where(Y == Y[1, 1], np.inf, Y)),
            "Input y contains infinity",
            id="inf-in-y",
        ),
        pytest.param(
            lambda X, Y: (X[:, 0], Y), "Expected 2D array, got 1D array", id="1d-X"
        ),
        pytest.param(
            lambda X, Y: (X[:, :, None], Y), "Found array with dim 3", id="3d-X"
        ),
        pytest.param(
            lambda X, Y: (X, Y[:, :, None]), "Found array with dim 3", id="3d-y"
        ),
        pytest.param(
            lambda X, Y: (X, Y[:4]),
            r"inconsistent numbers of samples: \[5, 4\]",
            id="row-mismatch",
        ),
        pytest.param(
            lambda X, Y: (X[:1], Y[:1]),
            r"1 sample\(s\) .* minimum of 2 is required",
            id="one-pattern",
        ),
    ],
)
def test_fit_rejects_bad_input(make, match):
    X, Y = make(*_data())
    with pytest.raises(ValueError, match=match):
        LinearAssociativeMemory().fit(X, Y)


@pytest.mark.parametrize("method", ["fit", "score"])
@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(
            sp.csr_matrix,
            r"y must be a dense array; got a sparse csr_matrix \(convert it with "
            r"y\.toarray\(\)\)",
            id="sparse",
        ),
        pytest.param(
            lambda Y: Y.astype(str),
            r"y must hold real numbers, .* got strings \(dtype <U",
            id="numeric-strings",
        ),
        pytest.param(
            lambda Y: np.array(list("abcde")),
            r"y must hold real numbers, .* got strings \(dtype <U1\)",
            id="labels",
        ),
        pytest.param(
            lambda Y: np.array(["a", 1.0, 2.0, 3.0, 4.0], dtype=object),
            r"y must hold real numbers, .* got strings \(dtype object\)",
            id="object-strings",
        ),
    ],
)
def test_rejects_targets_that_are_not_dense_and_real(method, make, match):
    X, Y = make_associations(5, 6, random_state=_rng(10))
    memory = LinearAssociativeMemory().fit(X, Y)
    with pytest.raises(TypeError, match=match):
        getattr(memory, method)(X, make(Y))


@pytest.mark.parametrize("scale", [1e-160, 1e160])
@pytest.mark.parametrize("name", ["X", "y"])
def test_fit_rejects_rows_at_extreme_scales(name, scale):
    X, Y = _data()
    X, Y = (X * scale, Y) if name == "X" else (X, Y * scale)
    with pytest.raises(
        ValueError, match=rf"{name} has a row whose largest entry is .* outside"
    ):
        LinearAssociativeMemory().fit(X, Y)


#: Scales (of X, of y) at the ends of the accepted range.
EXTREME_SCALES = [(1e-100, 1e-100), (1e100, 1e100), (1e-100, 1e100), (1e100, 1e-100)]


@pytest.mark.parametrize(("a", "b"), EXTREME_SCALES)
@pytest.mark.parametrize(
    ("n_patterns", "n_features", "expected"), [(4, 40, True), (6, 8, False)]
)
def test_hebbian_verdict_does_not_depend_on_scale(
    recwarn, n_patterns, n_features, expected, a, b
):
    X, Y = make_associations(n_patterns, n_features, random_state=_rng(15))
    X, Y = _unit_rows(X), _unit_rows(Y)
    unit = LinearAssociativeMemory("hebbian").fit(X, Y)
    unit_warnings = [str(w.message) for w in recwarn]
    recwarn.clear()
    scaled = LinearAssociativeMemory("hebbian").fit(a * X, b * Y)
    scaled_warnings = [str(w.message) for w in recwarn]

    assert unit.stored_ is expected
    assert len(unit_warnings) == (not expected)
    np.testing.assert_allclose(scaled.coef_, (b * Y).T @ (a * X))
    assert scaled.stored_ is unit.stored_
    assert scaled_warnings == unit_warnings
    assert scaled.margin_ == pytest.approx(
        a * b * unit.margin_, rel=TOL["rescaled_fit_rtol"]
    )
    assert scaled.score(a * X, b * Y) == unit.score(X, Y)
    np.testing.assert_array_equal(scaled.predict(a * X), b * unit.predict(X))


@pytest.mark.parametrize(("a", "b"), EXTREME_SCALES)
def test_max_margin_fit_scales_with_the_data(a, b):
    X, Y = make_associations(6, 8, random_state=_rng(16))
    X, Y = _unit_rows(X), _unit_rows(Y)
    unit = LinearAssociativeMemory().fit(X, Y)
    scaled = LinearAssociativeMemory().fit(a * X, b * Y)
    assert scaled.stored_ is unit.stored_ is True
    _assert_close(a * b * scaled.coef_, unit.coef_, TOL["rescaled_fit_rtol"])
    assert scaled.margin_ == pytest.approx(
        a * b * unit.margin_, rel=TOL["rescaled_fit_rtol"]
    )
    assert scaled.score(a * X, b * Y) == 1.0


@pytest.mark.parametrize(("a", "b"), [(1e-100, 1e100), (1e100, 1e-100)])
def test_soft_margin_fit_does_not_depend_on_balanced_scales(a, b):
    # Scaling X by a and y by 1 / a leaves the soft-margin program unchanged.
    X, Y = make_associations(6, 8, random_state=_rng(17))
    X, Y = _unit_rows(X), _unit_rows(Y)
    Y[3] = Y[1]
    with pytest.warns(StorageWarning, match="cannot all be stored"):
        unit = LinearAssociativeMemory().fit(X, Y)
    with pytest.warns(StorageWarning, match="cannot all be stored"):
        scaled = LinearAssociativeMemory().fit(a * X, b * Y)
    assert scaled.stored_ is unit.stored_ is False
    _assert_close(scaled.coef_, unit.coef_, TOL["soft_margin_w_rtol"])
    assert scaled.score(a * X, b * Y) == unit.score(X, Y)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (
            {"rule": "oja"},
            ValueError,
            "The rule parameter of LinearAssociativeMemory must be one of "
            "'max_margin', 'hebbian'; got 'oja'",
        ),
        (
            {"solver": "gurobi"},
            ValueError,
            "solver must be one of 'auto', 'IPM', 'ECOS', 'CLARABEL', 'HIGHS', 'SCS' "
            r"\(case-insensitive\); got 'gurobi'",
        ),
        (
            {"C": -1.0},
            ValueError,
            "The C parameter of LinearAssociativeMemory must be a positive finite "
            "number; got -1.0",
        ),
        (
            {"C": "1"},
            TypeError,
            r"The C parameter .* must be a positive finite number; got '1' of type str",
        ),
        (
            {"certificate_tol": float("nan")},
            ValueError,
            r"certificate_tol parameter .* positive finite number; got nan",
        ),
    ],
)
def test_fit_rejects_bad_parameters(params, error, match):
    X, Y = _data()
    memory = LinearAssociativeMemory(**params)
    with pytest.raises(error, match=match):
        memory.fit(X, Y)
    assert memory.get_params() == LinearAssociativeMemory(**params).get_params()


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("C", 0.0),
        ("C", float("inf")),
        ("C", True),
        ("C", "1"),
        ("certificate_tol", -1e-8),
        ("certificate_tol", float("nan")),
        ("certificate_tol", None),
    ],
)
def test_positive_parameters_use_the_shared_check(param, value):
    with pytest.raises((TypeError, ValueError)) as shared:
        check_positive(value, f"The {param} parameter of LinearAssociativeMemory")
    X, Y = _data()
    with pytest.raises(shared.type) as raised:
        LinearAssociativeMemory(**{param: value}).fit(X, Y)
    assert str(raised.value) == str(shared.value)


def test_methods_reject_inputs_of_the_wrong_width():
    X, Y = make_associations(4, 6, random_state=_rng(11))
    memory = LinearAssociativeMemory().fit(X, Y)
    with pytest.raises(ValueError, match=r"X has 5 features, but .* expecting 6"):
        memory.predict(X[:, :5])
    with pytest.raises(ValueError, match=r"y has 2 target columns, but .* with 6"):
        memory.score(X, Y[:, :2])


@pytest.mark.parametrize("solver", SOLVER_PARAMS)
def test_undecided_storage_falls_back_to_soft_margin(monkeypatch, solver):
    real_decide = assoc_cvx.estimator.decide
    message = "status 'optimal_inaccurate' is not trusted"

    def undecided(*args, **kwargs):
        result = real_decide(*args, **kwargs)
        attempt = Attempt(
            solver=result.solver,
            formulation="plain",
            solver_status="optimal_inaccurate",
            verdict="undecided",
            compile_time=0.0,
            solve_time=0.0,
            message=message,
        )
        return dataclasses.replace(
            result,
            stored=None,
            status="undecided",
            W=None,
            margin=None,
            solver_status="optimal_inaccurate",
            attempts=(attempt,),
        )

    X, Y = make_associations(5, 6, random_state=_rng(12))
    D = difference_tensor(Y)
    max_margin = LinearAssociativeMemory(solver=solver).fit(X, Y)
    monkeypatch.setattr(assoc_cvx.estimator, "decide", undecided)
    memory = LinearAssociativeMemory(solver=solver, C=0.1)
    with pytest.warns(
        StorageWarning,
        match=rf"undecided after {solver} plain: optimal_inaccurate \({message}\); "
        r"coef_ is the soft-margin matrix with C=0\.1\.",
    ):
        memory.fit(X, Y)

    assert memory.stored_ is None
    assert memory.storage_result_.status == "undecided"
    # The soft-margin QP goes to the Frobenius-ball (conic) solvers first.
    # The structured IPM solves only the storage program.
    expected = solver if SOLVERS[solver] == "fro" and solver != "IPM" else "ECOS"
    assert memory.solver_ == expected
    reference = soft_margin_program(X, D, C=0.1)
    reference.problem.solve(solver=expected, **SOLVER_OPTIONS.get(expected, {}))
    _assert_close(memory.coef_, reference.W.value, TOL["soft_margin_w_rtol"])
    # On these storable data the soft-margin matrix is far from the max-margin one.
    distance = np.linalg.norm(memory.coef_ - max_margin.coef_)
    assert distance > 0.1 * np.linalg.norm(max_margin.coef_)


@pytest.mark.parametrize("solver", CVXPY_SOLVER_PARAMS)
def test_soft_margin_failure_raises_solver_error(monkeypatch, solver):
    def failing(program, name, options):
        return SolverRun("error", 0.0, 0.0, f"{name} crashed")

    monkeypatch.setattr(assoc_cvx.estimator, "solve_program", failing)
    X, Y = make_associations(5, 4, random_state=_rng(13))
    Y[1] = Y[0]
    with pytest.raises(SolverError, match=f"tried .*{solver}: {solver} crashed") as err:
        LinearAssociativeMemory(solver=solver).fit(X, Y)
    for name in INSTALLED_SOLVERS:  # every installed cvxpy solver was tried
        if name != "IPM":
            assert f"{name}: {name} crashed" in str(err.value)
