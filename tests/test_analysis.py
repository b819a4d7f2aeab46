"""Mechanism analysis on small fitted memories."""

import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy.optimize import nnls
from sklearn.exceptions import NotFittedError

from assoc_cvx import (
    LinearAssociativeMemory,
    check_storage,
    make_associations,
    make_competitors,
)
from assoc_cvx.analysis import (
    extreme_value_location,
    plot_scores,
    plot_spectrum,
    pool_scores,
    pool_spectra,
    quarter_circle_cdf,
    quarter_circle_pdf,
    score_analysis,
    singular_spectrum,
    support_constraints,
)
from assoc_cvx.programs import difference_tensor


@pytest.fixture(scope="module")
def near_capacity():
    """d = 8, p = 20 (capacity is about 21): max-margin and Hebbian memories."""
    X, Y = make_associations(20, 8, random_state=11)
    result = check_storage(X, Y, solver="CLARABEL")
    assert result.stored
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hebbian = LinearAssociativeMemory("hebbian").fit(X, Y)
    return X, Y, result.W, hebbian


def test_scores_are_normalised_and_recomputed(near_capacity):
    X, Y, W, _ = near_capacity
    a = score_analysis(W, X, Y)
    Wn = W * 8 / np.linalg.norm(W)
    S = X @ Wn.T @ Y.T
    np.testing.assert_allclose(a.correct, np.diag(S))
    off = np.where(np.eye(20, dtype=bool), -np.inf, S)
    np.testing.assert_allclose(a.competitor_max, off.max(axis=1))
    assert a.recall == 1.0
    assert np.all(a.gap > 0)
    assert a.n_competitors == 19


def test_any_object_with_coef_is_read_as_a_memory(near_capacity):
    """A fitted model of another library, not a scikit-learn estimator."""
    X, Y, W, _ = near_capacity

    class Fitted:
        coef_ = W
        targets_ = Y

    a, b = score_analysis(Fitted(), X), score_analysis(W, X, Y)
    np.testing.assert_array_equal(a.correct, b.correct)
    np.testing.assert_array_equal(a.competitor_max, b.competitor_max)


def test_optimal_scores_are_pinned_and_hebbian_ones_broad(near_capacity):
    X, Y, W, hebbian = near_capacity
    opt = score_analysis(W, X, Y)
    heb = score_analysis(hebbian, X)  # Y from the fitted targets
    assert heb.recall < 1.0
    # the optimal gaps are a small fraction of the score spread, Hebbian not
    assert np.median(opt.gap) < 0.2 * np.std(opt.correct) + 0.05
    assert np.std(heb.gap) > 3 * np.std(opt.gap)


def test_gumbel_fit_of_normal_maxima_sits_at_the_extreme_value_level():
    rng = np.random.default_rng(0)
    W = np.eye(30)
    X = make_associations(400, 30, distribution="sphere", random_state=rng)[0]
    Z = make_competitors(400, 30, n_competitors=200, random_state=rng)
    # W = I scaled to ||W||_F = d: competitor scores are sqrt(d) z^T x with
    # unit x and N(0, 1/d) entries in z, so exactly N(0, 1); the ML Gumbel
    # fit of maxima of 200 normals is 2.56-2.59 (simulated apart), their
    # mode 2.61.
    a = score_analysis(W, X, X, competitors=Z)
    assert a.gumbel_loc == pytest.approx(extreme_value_location(200), abs=0.1)
    assert a.gumbel_scale == pytest.approx(0.34, abs=0.05)


def test_support_constraints_span_the_max_margin_matrix(near_capacity):
    X, Y, W, _ = near_capacity
    support = support_constraints(W, X, Y, tol=1e-5)
    assert 1 <= support.n_support <= support.n_weights
    assert support.per_input.sum() == support.n_support
    # KKT: W is a nonnegative combination of its support rows
    D = difference_tensor(Y)
    rows = np.array(
        [np.outer(D[mu, k], X[mu]).ravel() for mu, k in np.argwhere(support.mask)]
    )
    coef, residual = nnls(rows.T, W.ravel())
    assert residual <= 1e-4 * np.linalg.norm(W)
    assert np.all(coef >= 0)


def test_support_constraints_agree_with_the_engine():
    X, Y = make_associations(20, 8, random_state=11)
    result = check_storage(X, Y)
    if not result.max_margin or result.support is None:
        pytest.skip(f"{result.solver} did not return the max-margin W here")
    mine = support_constraints(result.W, X, Y, tol=1e-6)
    np.testing.assert_array_equal(np.argwhere(mine.mask), result.support)


def test_support_constraints_decoupled_and_rejects_non_storing_w(near_capacity):
    X, Y, _, hebbian = near_capacity
    Z = make_competitors(20, 8, random_state=3)
    result = check_storage(X, Y, competitors=Z, solver="CLARABEL")
    if result.stored:
        support = support_constraints(result.W, X, Y, competitors=Z, tol=1e-5)
        assert support.mask.shape == (20, 19)
    with pytest.raises(ValueError, match="does not store the associations"):
        support_constraints(hebbian, X)


def test_quarter_circle_law():
    x = np.linspace(0, 2, 2001)
    assert np.trapezoid(quarter_circle_pdf(x), x) == pytest.approx(1, abs=1e-3)
    assert np.trapezoid(x**2 * quarter_circle_pdf(x), x) == pytest.approx(1, abs=1e-3)
    assert quarter_circle_cdf(2.0) == pytest.approx(1.0)
    assert quarter_circle_cdf(0.0) == 0.0
    rng = np.random.default_rng(1)
    random = singular_spectrum(rng.standard_normal((300, 300)))
    assert random.ks_distance < 0.05
    assert np.mean(random.singular_values**2) == pytest.approx(1.0)


def test_spectrum_of_a_low_rank_matrix_is_far_from_the_law():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 50))
    spectrum = singular_spectrum(W)
    assert spectrum.ks_distance > 0.5
    assert spectrum.condition_number > 1e10


def test_pooling_concatenates_and_refits(near_capacity):
    X, Y, W, hebbian = near_capacity
    a, b = score_analysis(W, X, Y), score_analysis(hebbian, X)
    pooled = pool_scores([a, b])
    np.testing.assert_array_equal(pooled.gap, np.r_[a.gap, b.gap])
    assert pooled.recall == pytest.approx((a.recall + b.recall) / 2)
    spectrum = pool_spectra([singular_spectrum(W), singular_spectrum(hebbian)])
    assert spectrum.singular_values.shape == (16,)
    assert np.mean(spectrum.singular_values**2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Nothing to pool"):
        pool_scores([])


def test_figures_are_returned_and_saved(near_capacity, tmp_path):
    X, Y, W, hebbian = near_capacity
    fig = plot_scores(
        {"optimal": score_analysis(W, X, Y), "Hebbian": score_analysis(hebbian, X)}
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    fig.savefig(tmp_path / "scores.png")
    fig = plot_spectrum({"optimal": singular_spectrum(W)})
    fig.savefig(tmp_path / "spectrum.png")
    assert (tmp_path / "scores.png").stat().st_size > 1000
    assert (tmp_path / "spectrum.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: score_analysis(np.zeros((3, 3)), np.eye(3), np.eye(3)),
            ValueError,
            "W must be finite and nonzero",
        ),
        (lambda: score_analysis(np.eye(3), np.eye(3)), ValueError, "Y is needed"),
        (
            lambda: score_analysis(np.eye(2), np.eye(3), np.eye(3)),
            ValueError,
            "W must have shape",
        ),
        (lambda: extreme_value_location(1), ValueError, "n_competitors must be"),
        (lambda: extreme_value_location(2.5), TypeError, "n_competitors must be an"),
        (lambda: extreme_value_location(True), TypeError, "n_competitors must be an"),
        (lambda: plot_scores({}), ValueError, "Nothing to plot"),
        (lambda: singular_spectrum(np.eye(3) + 1j), TypeError, "W must be real"),
        (
            lambda: score_analysis(np.eye(3) + 1j, np.eye(3), np.eye(3)),
            TypeError,
            "W must be real",
        ),
        (
            lambda: score_analysis(np.eye(3), np.eye(3) + 1j, np.eye(3)),
            TypeError,
            "X must be real",
        ),
        (
            lambda: score_analysis(LinearAssociativeMemory(), np.eye(3), np.eye(3)),
            NotFittedError,
            "LinearAssociativeMemory instance is not fitted",
        ),
        (
            lambda: singular_spectrum(LinearAssociativeMemory()),
            NotFittedError,
            "not fitted",
        ),
        (
            lambda: support_constraints(LinearAssociativeMemory(), np.eye(3)),
            NotFittedError,
            "not fitted",
        ),
    ],
)
def test_analysis_rejects_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    ("plot", "item", "kwargs", "error", "match"),
    [
        ("scores", "a", {"bins": 0}, ValueError, "bins must be an integer >= 1; got 0"),
        ("scores", "a", {"bins": 2.5}, TypeError, "bins must be an integer >= 1"),
        ("scores", "[a]", {}, TypeError, "analyses must be a ScoreAnalysis or a map"),
        ("scores", "{x: [a]}", {}, TypeError, r"analyses\['x'\] must be a ScoreAn"),
        ("scores", "s", {}, TypeError, "got Spectrum"),
        ("spectrum", "s", {"bins": -1}, ValueError, "bins must be an integer >= 1"),
        ("spectrum", "[s]", {}, TypeError, "spectra must be a Spectrum or a mapping"),
    ],
)
def test_plots_reject_bad_input(plot, item, kwargs, error, match):
    X, Y = make_associations(6, 4, random_state=0)
    a, s = score_analysis(np.eye(4), X, Y), singular_spectrum(np.eye(4))
    arg = {"a": a, "s": s, "[a]": [a], "{x: [a]}": {"x": [a]}, "[s]": [s]}[item]
    draw = plot_scores if plot == "scores" else plot_spectrum
    with pytest.raises(error, match=match):
        draw(arg, **kwargs)


def test_extreme_value_location_of_a_huge_count():
    # numpy's log fails on a Python int beyond int64; the formula does not.
    big = 10**30
    a = np.sqrt(2 * np.log(1e30))
    expected = a - (np.log(np.log(1e30)) + np.log(4 * np.pi)) / (2 * a)
    assert extreme_value_location(big) == pytest.approx(expected, rel=1e-12)
    assert extreme_value_location(np.int64(10)) == extreme_value_location(10)
