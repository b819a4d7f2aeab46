"""Closed-form predictions against independent computations."""

import mpmath as mp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.stats import norm

from assoc_cvx.theory import (
    asymptotic_capacity,
    bits_per_parameter,
    capacity_alpha,
    capacity_at_load,
    gardner_alpha,
    hebbian_capacity,
    listwise_alpha,
    listwise_capacity,
    listwise_threshold,
    rs_alpha,
    rs_capacity,
)


@pytest.mark.parametrize("d", [1, 10, 20, 32, 100])
def test_asymptote_solves_p_log_p_equals_half_d_squared(d):
    expected = brentq(lambda p: p * np.log(p) - d * d / 2, 1.0 + 1e-12, d * d + 2.0)
    assert asymptotic_capacity(d) == pytest.approx(expected, rel=1e-10)
    assert capacity_alpha(asymptotic_capacity(d), d) == pytest.approx(0.5)


def test_asymptote_reference_values():
    # design notes §7: 17.5 at d = 10 and 50.9 at d = 20
    assert asymptotic_capacity(10) == pytest.approx(17.5, abs=0.05)
    assert asymptotic_capacity(20) == pytest.approx(50.9, abs=0.05)


def test_asymptote_rejects_bad_dimension():
    with pytest.raises(ValueError, match="n_features must be an integer >= 1"):
        asymptotic_capacity(0)


def _water_filling_mc(n_competitors, kappa, n_samples, seed):
    """Monte Carlo of ``E[min_t f(t)]`` of design notes §6, by brute force.

    The minimiser is one of the levels ``t_m`` (average of ``z_0 - kappa``
    and the top m competitors) or ``z_0 - kappa`` itself, so the minimum of
    the exact objective over those candidates is the minimum over t.
    Returns the estimate of alpha and its relative standard error.
    """
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_samples // 5000):
        a = rng.standard_normal(5000) - kappa
        c = -np.sort(-rng.standard_normal((5000, n_competitors)), axis=1)
        m = np.arange(1, n_competitors + 1)
        levels = (a[:, None] + np.cumsum(c, axis=1)) / (m + 1)
        cand = np.concatenate([a[:, None], levels[:, :12]], axis=1)
        f = np.maximum(cand - a[:, None], 0) ** 2 + np.sum(
            np.maximum(c[:, None, :] - cand[:, :, None], 0) ** 2, axis=2
        )
        values.append(f.min(axis=1))
    v = np.concatenate(values)
    return 1 / v.mean(), v.std() / np.sqrt(v.size) / v.mean()


@pytest.mark.parametrize(("kappa", "expected"), [(0.0, 2.0), (1.0, 0.5196)])
def test_gardner_reference_values(kappa, expected):
    assert gardner_alpha(kappa) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("kappa", [-1.0, 0.0, 0.5, 2.0])
def test_gardner_matches_its_integral(kappa):
    integral, _ = quad(lambda t: norm.pdf(t) * (t + kappa) ** 2, -kappa, np.inf)
    assert gardner_alpha(kappa) == pytest.approx(1 / integral, rel=1e-9)


@pytest.mark.parametrize("r", [0.01, 0.1, 0.5, 1.0])
def test_listwise_threshold_is_the_mean_of_the_top_fraction(r):
    cut = norm.ppf(1 - r)
    top_mean = quad(lambda g: g * norm.pdf(g), cut, np.inf)[0] / r
    assert listwise_threshold(r) == pytest.approx(top_mean, abs=1e-9)
    k = listwise_threshold(r)
    moment = quad(lambda g: norm.pdf(g) * (k - g) ** 2, -np.inf, k)[0]
    assert listwise_alpha(r) == pytest.approx(1 / moment, rel=1e-8)
    assert listwise_capacity(10, r) == pytest.approx(100 * listwise_alpha(r))


@pytest.mark.parametrize("r", [1e-17, 1e-15, 1e-10, 1e-5, 0.3, 1 - 1e-12])
def test_listwise_threshold_and_alpha_for_tiny_r_match_high_precision(r):
    # 1 - r rounds to one below r = 1e-16: the threshold must not come from it.
    with mp.workdps(60):
        rm = mp.mpf(r)
        cut = -mp.sqrt(2) * mp.erfinv(2 * rm - 1)  # Phi^{-1}(1 - r)
        k = mp.npdf(cut) / rm
        moment = (k * k + 1) * mp.ncdf(k) + k * mp.npdf(k)
        expected_k, expected_alpha = float(k), float(1 / moment)
    assert listwise_threshold(r) == pytest.approx(expected_k, rel=1e-12)
    assert listwise_alpha(r) == pytest.approx(expected_alpha, rel=1e-12)


def test_listwise_falls_as_r_shrinks():
    values = [listwise_alpha(r) for r in (1.0, 0.5, 0.1, 0.01)]
    assert values[0] == pytest.approx(2.0)
    assert np.all(np.diff(values) < 0)


@pytest.mark.parametrize("kappa", [0.0, 0.5, 1.0, 3.0])
def test_rs_alpha_with_one_competitor_is_gardner(kappa):
    # min_t (t + kappa - z0)_+^2 + (z1 - t)_+^2 = (z1 - z0 + kappa)_+^2 / 2,
    # whose mean is E[(G + kappa / sqrt 2)_+^2]: Gardner at kappa / sqrt(2).
    assert rs_alpha(1, kappa) == pytest.approx(
        gardner_alpha(kappa / np.sqrt(2)), rel=1e-4
    )


@pytest.mark.parametrize(("n_competitors", "kappa"), [(5, 0.0), (29, 0.0), (29, 1.0)])
def test_rs_alpha_matches_monte_carlo(n_competitors, kappa):
    mc, rel_se = _water_filling_mc(n_competitors, kappa, 100_000, seed=n_competitors)
    assert rs_alpha(n_competitors, kappa) == pytest.approx(mc, rel=5 * rel_se)


def test_rs_capacity_design_note_values():
    # design notes §7: the RS prediction is 30-31 at d = 10 and 85-87 at d = 20.
    assert 30 <= rs_capacity(10) <= 31
    assert 85 <= rs_capacity(20) <= 87
    p = rs_capacity(20)
    assert p == pytest.approx(
        400 * np.interp(p - 1, [85, 86], [rs_alpha(85), rs_alpha(86)])
    )


def test_rs_capacity_drifts_down_towards_the_asymptote():
    ds = [10, 16, 20, 32, 40]
    alphas = [capacity_alpha(rs_capacity(d), d) for d in ds]
    assert np.all(np.diff(alphas) < 0)
    assert min(alphas) > 0.5
    assert all(rs_capacity(d) > asymptotic_capacity(d) for d in ds)
    # a margin lowers the capacity
    assert rs_capacity(10, kappa=1.0) < rs_capacity(10)


@pytest.mark.parametrize("alpha", [0.125, 0.5, 1.0])
def test_capacity_at_load_solves_the_load(alpha):
    assert capacity_alpha(capacity_at_load(20, alpha), 20) == pytest.approx(alpha)


def test_hebbian_thresholds():
    assert capacity_alpha(hebbian_capacity(20), 20) == pytest.approx(1 / 8)
    assert hebbian_capacity(20, "typical") == pytest.approx(asymptotic_capacity(20))
    with pytest.raises(ValueError, match="criterion must be one of 'all', 'typical'"):
        hebbian_capacity(20, "most")


def test_bits_per_parameter():
    assert bits_per_parameter(8, 2) == pytest.approx(6.0)
    p = asymptotic_capacity(1000)
    assert bits_per_parameter(p, 1000) == pytest.approx(1 / (2 * np.log(2)))
    np.testing.assert_allclose(bits_per_parameter([1, 2], 1), [0.0, 2.0])
    with pytest.raises(ValueError, match="n_patterns must be finite and >= 1"):
        bits_per_parameter(0.5, 3)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: rs_alpha(0), ValueError, "n_competitors must be an integer >= 1"),
        (lambda: rs_alpha(3, -1.0), ValueError, r"kappa must be a finite number in"),
        (lambda: rs_alpha(3, "1"), TypeError, "kappa must be a real number"),
        (lambda: rs_capacity(10, np.nan), ValueError, "kappa must be a finite"),
        (lambda: listwise_alpha(0.0), ValueError, r"r must be a finite number in \(0"),
        (lambda: listwise_alpha(1.5), ValueError, r"r must be a finite number in"),
        (lambda: gardner_alpha(np.inf), ValueError, "kappa must be a finite"),
        (lambda: gardner_alpha(np.nan), ValueError, "kappa must be a finite number;"),
        (lambda: listwise_alpha(0.5, -1), ValueError, "kappa must be .* >= 0.0; got"),
        (lambda: capacity_at_load(10, 0.0), ValueError, "alpha must be .* > 0.0; got"),
    ],
)
def test_theory_rejects_bad_input(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "None" not in str(info.value)  # no bound is written as [None, None]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: capacity_alpha(10, -1), ValueError, "n_features must be .* >= 1.0"),
        (lambda: capacity_alpha(10, 0), ValueError, "n_features must be .* >= 1.0"),
        (lambda: capacity_alpha(0, 10), ValueError, "n_patterns must be finite and >="),
        (lambda: capacity_alpha([3, 0.5], 10), ValueError, "n_patterns must be finite"),
        (lambda: capacity_alpha(np.nan, 10), ValueError, "n_patterns must be finite"),
        (
            lambda: capacity_alpha("3", 10),
            TypeError,
            "n_patterns must be a real number",
        ),
        (lambda: capacity_alpha(True, 10), TypeError, "n_patterns must be a real"),
        (
            lambda: capacity_alpha(3, True),
            TypeError,
            "n_features must be a real number",
        ),
        (
            lambda: capacity_alpha(3, "10"),
            TypeError,
            "n_features must be a real number",
        ),
        (lambda: capacity_alpha(3 + 1j, 10), TypeError, "n_patterns must be a real"),
        (lambda: bits_per_parameter("3", 10), TypeError, "n_patterns must be a real"),
        (lambda: bits_per_parameter(True, 10), TypeError, "n_patterns must be a real"),
        (
            lambda: bits_per_parameter([2, True], 1),
            TypeError,
            "n_patterns must be a re",
        ),
        (lambda: bits_per_parameter(3, True), TypeError, "n_features must be an integ"),
        (lambda: rs_alpha(10**30), ValueError, r"n_competitors must be .*got 10{30}"),
        (lambda: rs_alpha(2**62), ValueError, r"in \[1, 1,000,000,000,000\]"),
    ],
)
def test_load_formulas_reject_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_load_formulas_keep_arrays_and_large_integers():
    np.testing.assert_allclose(
        capacity_alpha([1, 2, 4], 2), np.array([1, 2, 4]) * np.log([1, 2, 4]) / 4
    )
    assert capacity_alpha(np.arange(1, 4), 3.0).shape == (3,)
    assert isinstance(capacity_alpha(17, 10), float)
    big = 10**30
    assert capacity_alpha(big, 10**15) == pytest.approx(big * np.log(1e30) / 1e30)
    assert bits_per_parameter(big, 10**15) == pytest.approx(np.log2(1e30))
    assert rs_alpha(10**12) < rs_alpha(10**6)


def test_rs_alpha_stays_accurate_for_many_competitors():
    # Brute-force Monte Carlo (20000 samples, not run here) gave 0.1232 +- 0.0005
    # at K = 1000; many competitors above the level must not blow up round-off.
    assert rs_alpha(1000) == pytest.approx(0.1232, abs=0.0015)
    values = [rs_alpha(k) for k in (100, 1000, 5000)]
    assert np.all(np.diff(values) < 0)
    assert capacity_alpha(rs_capacity(100), 100) > 0.5
