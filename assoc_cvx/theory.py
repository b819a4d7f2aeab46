r"""Closed-form and replica-symmetric capacity predictions.

Every function states its formula and its source in Notes. Loads are written
``alpha = p log p / d^2`` (natural logarithm) for the logarithmic scalings
and ``alpha = p / d^2`` (patterns per weight) for the perceptron-type
formulas; each docstring says which.
"""

import functools
from numbers import Real

import numpy as np
from scipy.special import gammaln, lambertw, log_ndtr, ndtr, ndtri
from scipy.stats import norm

from assoc_cvx._validation import check_int, check_option, check_real

__all__ = [
    "HEBBIAN_ALPHA",
    "MAX_KAPPA",
    "asymptotic_capacity",
    "bits_per_parameter",
    "capacity_alpha",
    "capacity_at_load",
    "gardner_alpha",
    "hebbian_capacity",
    "listwise_alpha",
    "listwise_capacity",
    "listwise_threshold",
    "rs_alpha",
    "rs_capacity",
]

#: Asymptotic loads ``p log p / d^2`` of the Hebbian rule: every association
#: recalled (``"all"``) and a typical one recalled (``"typical"``).
HEBBIAN_ALPHA = {"all": 1.0 / 8.0, "typical": 1.0 / 2.0}

#: Grid step, and half-width in standard deviations, of the quadrature in
#: :func:`rs_alpha`; halving the step changes alpha by less than 1e-6.
_RS_STEP = 0.01
_RS_WIDTH = 9.0
#: Largest number of competitors above the water level kept in :func:`rs_alpha`.
_RS_TERMS = 120
#: Largest margin kappa accepted by the replica-symmetric functions (in
#: standard deviations of a competitor's score).
MAX_KAPPA = 10.0
#: Largest number of competitors of :func:`rs_alpha`: beyond about 3e12 the
#: top competitors leave the quadrature window (the guard on the last term
#: fires, and past 1e16 the sum underflows to nonsense).
_RS_MAX_COMPETITORS = 10**12


def _check_counts(n_patterns, name="n_patterns"):
    """``n_patterns`` as a float array, or raise unless all are finite and >= 1.

    Accepts a real number or an array-like of them (Python ints of any
    size included); refuses bools, strings and complex numbers.
    """
    values = np.asarray(n_patterns, dtype=object)
    if not all(
        isinstance(v, Real) and not isinstance(v, bool | np.bool_) for v in values.flat
    ):
        raise TypeError(
            f"{name} must be a real number or an array of real numbers >= 1; got "
            f"{n_patterns!r}."
        )
    try:
        p = np.array([float(v) for v in values.flat]).reshape(values.shape)
    except OverflowError:  # a Python int beyond the float range
        p = np.full(values.shape, np.inf)
    if np.any(~np.isfinite(p)) or np.any(p < 1):
        raise ValueError(f"{name} must be finite and >= 1; got {n_patterns!r}.")
    return p


def capacity_at_load(n_features: int, alpha: float) -> float:
    r"""The p at which ``p log p / d^2`` equals a given load.

    Parameters
    ----------
    n_features : int
        Dimension d >= 1.
    alpha : float
        Load ``p log p / d^2`` (natural logarithm), positive.

    Returns
    -------
    p : float
        The solution p > 1 of :math:`p \log p = \alpha d^2`.

    Notes
    -----
    :math:`p = c / W_0(c)` with :math:`c = \alpha d^2` and :math:`W_0` the
    principal branch of the Lambert W function: if :math:`p = e^{w}` then
    :math:`w e^{w} = c`.

    Examples
    --------
    >>> from assoc_cvx.theory import capacity_at_load
    >>> round(capacity_at_load(10, 0.5), 2)
    17.48
    """
    d = check_int(n_features, "n_features")
    alpha = check_real(alpha, "alpha", low=0.0, high=np.inf, low_open=True)
    c = alpha * d * d
    return float(c / lambertw(c).real)


def asymptotic_capacity(n_features: int) -> float:
    r"""Large-d capacity of a d x d linear memory (zero margin).

    Solves :math:`p \log p / d^2 = 1/2` for p:
    :math:`p_c = c / W_0(c)` with :math:`c = d^2 / 2` and :math:`W_0` the
    principal branch of the Lambert W function (arXiv 2605.10795). The same
    for the coupled and decoupled constraint sets. At finite d the measured
    capacity is well above it: convergence is logarithmically slow.

    Parameters
    ----------
    n_features : int
        Dimension d >= 1.

    Returns
    -------
    p_c : float
        The number of patterns at which ``p log p = d^2 / 2``.

    Examples
    --------
    >>> from assoc_cvx.theory import asymptotic_capacity
    >>> round(asymptotic_capacity(10), 2)
    17.48
    """
    return capacity_at_load(n_features, 0.5)


def capacity_alpha(n_patterns, n_features):
    """Load ``alpha = p log p / d^2`` (natural logarithm).

    At the capacity of a d x d linear memory it tends to 1/2 as d grows.

    Parameters
    ----------
    n_patterns : float or array-like
        Number(s) of patterns p, each finite and >= 1 (not bools or strings).
    n_features : float
        Dimension d, a real number >= 1 (an int in practice).

    Returns
    -------
    alpha : float or ndarray
        Same shape as ``n_patterns``.

    Raises
    ------
    TypeError
        When ``n_patterns`` or ``n_features`` is not real (a bool, a string).
    ValueError
        When a p is below 1 or not finite, or d is below 1 or not finite.
    """
    p = _check_counts(n_patterns)
    d = check_real(n_features, "n_features", low=1.0)
    out = p * np.log(p) / (d * d)
    return float(out) if out.ndim == 0 else out


def hebbian_capacity(n_features: int, criterion: str = "all") -> float:
    r"""Asymptotic capacity of the Hebbian rule ``W = sum_mu y_mu x_mu^T``.

    Parameters
    ----------
    n_features : int
        Dimension d >= 1.
    criterion : {"all", "typical"}, default="all"
        ``"all"``: every association recalled with high probability, up to
        :math:`p \log p / d^2 \to 1/8`. ``"typical"``: a typical association
        recalled, up to :math:`p \log p / d^2 \to 1/2`.

    Returns
    -------
    p : float
        The p solving :math:`p \log p = \alpha d^2` for that threshold.

    Notes
    -----
    The Hebbian score of the correct target is about one, while each of the
    p - 1 crosstalk scores is roughly Gaussian with variance p / d^2; the
    largest of p competitors sits near :math:`\sqrt{2 \log p \cdot p / d^2}`,
    so a typical input is recalled while :math:`2 p \log p / d^2 < 1`, and
    all p of them (a union over p inputs, one more :math:`2 \log p` each)
    while :math:`4 \cdot 2 p \log p / d^2 < 1`, i.e. the loads 1/2 and 1/8
    (arXiv 2605.10795, design notes §6). These are large-d limits; at small d
    finite-size crosstalk makes the rule store much less (about p = 10 at
    d = 20).

    Examples
    --------
    >>> from assoc_cvx.theory import hebbian_capacity
    >>> round(hebbian_capacity(20), 1)
    17.5
    """
    check_option(criterion, "criterion", tuple(HEBBIAN_ALPHA))
    return capacity_at_load(n_features, HEBBIAN_ALPHA[criterion])


def _positive_part_second_moment(k):
    """``E[(k - G)_+^2]`` for a standard normal G, elementwise."""
    k = np.asarray(k, dtype=float)
    return (k * k + 1.0) * ndtr(k) + k * norm.pdf(k)


def gardner_alpha(kappa: float = 0.0) -> float:
    r"""Gardner's critical load ``p / N`` of a spherical perceptron.

    Parameters
    ----------
    kappa : float, default=0.0
        Margin, in units of the weight norm times the input norm; any finite
        real number (negative margins allowed).

    Returns
    -------
    alpha_c : float
        Patterns per weight at capacity: 2 at zero margin, about 0.52 at
        kappa = 1.

    Notes
    -----
    .. math::
        \frac{1}{\alpha_c(\kappa)} = \int_{-\kappa}^{\infty} Dt\,(t + \kappa)^2
        = (\kappa^2 + 1)\,\Phi(\kappa) + \kappa\,\varphi(\kappa),

    with :math:`Dt` the standard normal measure (E. Gardner, J. Phys. A 21,
    257 (1988); design notes §6).

    Examples
    --------
    >>> from assoc_cvx.theory import gardner_alpha
    >>> gardner_alpha(0.0)
    2.0
    """
    kappa = check_real(kappa, "kappa")
    return float(1.0 / _positive_part_second_moment(kappa))


def listwise_threshold(r: float) -> float:
    r"""Margin ``kappa_r`` of listwise retrieval at top fraction r.

    Parameters
    ----------
    r : float
        Fraction of competitors averaged, in (0, 1].

    Returns
    -------
    kappa_r : float
        :math:`\varphi(\Phi^{-1}(1 - r)) / r`, the mean of a standard normal
        restricted to its top r-fraction (0 at r = 1).

    Notes
    -----
    The quantile is evaluated as :math:`-\Phi^{-1}(r)`, not from ``1 - r``,
    which rounds to one for r below about 1e-16 and loses digits well before.
    """
    r = check_real(r, "r", low=0.0, high=1.0, low_open=True)
    if r == 1.0:
        return 0.0
    # phi is even, so phi(Phi^{-1}(1 - r)) = phi(Phi^{-1}(r)) without 1 - r.
    return float(norm.pdf(ndtri(r)) / r)


def listwise_alpha(r: float, kappa: float = 0.0) -> float:
    r"""Critical load ``p / d^2`` of listwise retrieval.

    The correct score must beat the mean of the top r-fraction of competitor
    scores (a convex, CVaR-type constraint) instead of every competitor.

    Parameters
    ----------
    r : float
        Fraction of competitors averaged, in (0, 1]. r = 1 compares with the
        mean competitor and gives Gardner's 2.
    kappa : float, default=0.0
        Additional margin, >= 0, in standard deviations of a competitor's
        score: the threshold becomes :math:`\kappa_r + \kappa`.

    Returns
    -------
    alpha_c : float
        Patterns per weight ``p / d^2`` at capacity.

    Notes
    -----
    .. math::
        \alpha_c(r) = 1 / E[(\kappa_r - G)_+^2], \qquad
        \kappa_r = \varphi(\Phi^{-1}(1 - r)) / r,

    with G standard normal and
    :math:`E[(k - G)_+^2] = (k^2 + 1)\Phi(k) + k\varphi(k)`
    (arXiv 2605.05189; design notes §6). The capacity then grows as
    :math:`d^2`, not :math:`d^2 / \log d`.

    Examples
    --------
    >>> from assoc_cvx.theory import listwise_alpha
    >>> listwise_alpha(1.0)
    2.0
    """
    kappa = check_real(kappa, "kappa", low=0.0)
    return float(1.0 / _positive_part_second_moment(listwise_threshold(r) + kappa))


def listwise_capacity(n_features: int, r: float) -> float:
    """Predicted listwise capacity ``p = alpha_c(r) d^2``.

    Parameters
    ----------
    n_features : int
        Dimension d >= 1.
    r : float
        Fraction of competitors averaged, in (0, 1].

    Returns
    -------
    p : float
        ``listwise_alpha(r) * d**2`` (see :func:`listwise_alpha`).
    """
    d = check_int(n_features, "n_features")
    return listwise_alpha(r) * d * d


def bits_per_parameter(n_patterns, n_features):
    r"""Information stored per entry of W: ``p log2 p / d^2``.

    Each of the p associations selects one of p targets, which is
    :math:`\log_2 p` bits; W has :math:`d^2` entries.

    Parameters
    ----------
    n_patterns : float or array-like
        Number(s) of patterns p, each finite and >= 1 (not bools or strings).
    n_features : int
        Dimension d >= 1.

    Returns
    -------
    bits : float or ndarray
        Same shape as ``n_patterns``.

    Raises
    ------
    TypeError
        When ``n_patterns`` is not real or ``n_features`` not an integer.
    ValueError
        When a p is below 1 or not finite, or d is below 1.

    Notes
    -----
    At the asymptotic capacity :math:`p \log p / d^2 = 1/2`, so the value
    tends to :math:`1 / (2 \ln 2) \approx 0.72` (design notes §6).

    Examples
    --------
    >>> from assoc_cvx.theory import asymptotic_capacity, bits_per_parameter
    >>> round(float(bits_per_parameter(asymptotic_capacity(50), 50)), 4)
    0.7213
    """
    d = check_int(n_features, "n_features")
    p = _check_counts(n_patterns)
    out = p * np.log2(p) / float(d) ** 2
    return float(out) if out.ndim == 0 else out


@functools.lru_cache(maxsize=8)
def _rs_table(kappa):
    """Quadrature table of :func:`rs_alpha` for one margin.

    Returns the t grid, its trapezoid weights and ``E[t, n]``: the integral
    over s of ``s Phi(t + kappa - s) exp(-t s) H_n(s)``, where ``H_n`` is the
    n-fold convolution of the half-normal density ``phi(u) 1{u > 0}``.
    """
    h = _RS_STEP
    t = np.arange(-kappa - _RS_WIDTH, _RS_WIDTH + h / 2, h)
    s = np.arange(0.0, 2 * _RS_WIDTH + kappa + h / 2, h)

    def trapezoid(n):
        w = np.full(n, h)
        w[0] = w[-1] = h / 2
        return w

    phi = norm.pdf(s)
    H = np.empty((_RS_TERMS, s.size))
    H[0] = phi
    for n in range(1, _RS_TERMS):
        # a direct sum of positive terms keeps the tiny values of H_n near
        # s = 0 accurate (an FFT would bury them in round-off that the large
        # binomial weights of rs_alpha then amplify)
        conv = np.convolve(H[n - 1], phi)[: s.size] * h
        # trapezoid rule: halve the two end points of each convolution sum
        conv -= 0.5 * h * (H[n - 1] * phi[0] + H[n - 1][0] * phi)
        H[n] = np.maximum(conv, 0.0)
    A = np.exp(-np.outer(t, s) + log_ndtr(t[:, None] + kappa - s[None, :]))
    A *= s * trapezoid(s.size)
    return t, trapezoid(t.size), A @ H.T


def rs_alpha(n_competitors, kappa: float = 0.0) -> float:
    r"""Replica-symmetric critical load ``p / d^2`` with K competitors per input.

    Parameters
    ----------
    n_competitors : int
        Number K of competitors of each input (K = p - 1 for a memory of p
        associations), in [1, 10**12]: beyond, the top competitors leave the
        quadrature window.
    kappa : float, default=0.0
        Margin in [0, 10].

    Returns
    -------
    alpha : float
        The load :math:`\alpha(K, \kappa) = p / d^2` at which a spherical
        perceptron with :math:`N = d^2` weights stops storing p groups of one
        correct field and K competitor fields.

    Notes
    -----
    Design notes §6 (the vectorised weights of a d x d memory as one
    spherical perceptron):

    .. math::
        \frac{1}{\alpha(K, \kappa)} = E\Big[\min_t \big((t + \kappa - z_0)_+^2
        + \sum_{k=1}^{K} (z_k - t)_+^2\big)\Big],

    with the z's i.i.d. standard normal. The minimum V is a water-filling
    problem; by the envelope theorem it is an integral over the water level
    t of :math:`2 S(t) (1 + N(t))` for the levels above the optimal one,
    where :math:`N(t)` competitors exceed t by :math:`S(t)` in total. Given
    :math:`N(t) = n`, the joint density of the n exceedances factorises as
    :math:`e^{-n t^2/2 - t s} H_n(s)` with :math:`H_n` the n-fold
    convolution of the half-normal density, independent of t. Hence

    .. math::
        E[V] = 2 \int dt \sum_{n \ge 1} \binom{K}{n} (1 + n)\,
        \Phi(t)^{K-n} e^{-n t^2/2}
        \int_0^\infty ds\, s\, \Phi(t + \kappa - s)\, e^{-t s} H_n(s),

    a deterministic two-dimensional quadrature (trapezoid rule, step 0.01,
    both variables cut at 9 standard deviations; at most 120 competitors
    above the level). It agrees with a Monte Carlo evaluation of the first
    formula to its sampling error (0.1 %), and with the exact
    :math:`\alpha(1, \kappa)` = ``gardner_alpha(kappa / sqrt(2))`` to 1e-4.

    Examples
    --------
    >>> from assoc_cvx.theory import rs_alpha
    >>> round(rs_alpha(1), 3)
    2.0
    """
    K = check_int(n_competitors, "n_competitors")
    if K > _RS_MAX_COMPETITORS:
        raise ValueError(
            f"n_competitors must be an integer in [1, {_RS_MAX_COMPETITORS:,}] "
            f"(the quadrature of rs_alpha is accurate up to there); got {K}."
        )
    kappa = check_real(kappa, "kappa", low=0.0, high=MAX_KAPPA)
    t, tw, E = _rs_table(kappa)
    n = np.arange(1, min(K, _RS_TERMS) + 1)
    log_binom = gammaln(K + 1) - gammaln(n + 1) - gammaln(K - n + 1)
    log_w = (
        log_binom[None, :]
        + (K - n)[None, :] * log_ndtr(t)[:, None]
        - n[None, :] * (t * t / 2)[:, None]
    )
    terms = np.exp(log_w) * (1 + n)[None, :] * E[:, : n.size]
    by_n = tw @ terms
    total = 2.0 * by_n.sum()
    if K > _RS_TERMS and by_n[-1] > 1e-12 * total:  # pragma: no cover - guard
        raise ValueError(
            f"rs_alpha: n_competitors={K} is too large for the quadrature "
            f"(more than {_RS_TERMS} competitors above the level matter)."
        )
    return float(1.0 / total)


def rs_capacity(
    n_features: int, kappa: float = 0.0, *, n_hidden: int | None = None
) -> float:
    r"""Finite-size replica-symmetric capacity ``p_c(d, kappa)``.

    Parameters
    ----------
    n_features : int
        Dimension d >= 1.
    kappa : float, default=0.0
        Margin in [0, 10].
    n_hidden : int, default=None
        Width k of a frozen random first layer (a memory ``W2 W1`` with only
        the d x k matrix W2 learned): the number of weights is then
        ``N = d k`` instead of ``d^2``. None for the one-layer memory.

    Returns
    -------
    p_c : float
        The solution of :math:`p = N \alpha(p - 1, \kappa)` with
        :math:`N = d^2` (or d k; see :func:`rs_alpha`), with alpha linearly
        interpolated between consecutive integers K; 1.0 when even p = 2
        exceeds the load.

    Notes
    -----
    Design notes §6. :math:`p - d^2 \alpha(p - 1, \kappa)` increases with p;
    the integer crossing is found by bisection, then the root of the linear
    interpolant between the two integers. At kappa = 0 it gives 30.6, 61.7,
    86.9 and 182.2 at d = 10, 16, 20, 32; as d grows, :math:`p_c \log p_c /
    d^2` falls towards 1/2 only logarithmically slowly.

    Examples
    --------
    >>> from assoc_cvx.theory import rs_capacity
    >>> round(rs_capacity(10), 1)
    30.6
    """
    d = check_int(n_features, "n_features")
    kappa = check_real(kappa, "kappa", low=0.0, high=MAX_KAPPA)
    k = d if n_hidden is None else check_int(n_hidden, "n_hidden")
    n_weights = d * k

    def excess(p):
        return p - n_weights * rs_alpha(p - 1, kappa)

    lo, hi = 2, 4
    if excess(lo) > 0:
        # Even two patterns exceed the load (d = 1 with a positive margin).
        return 1.0
    while excess(hi) <= 0:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if excess(mid) <= 0:
            lo = mid
        else:
            hi = mid
    f_lo, f_hi = excess(lo), excess(hi)
    return float(lo + (-f_lo) / (f_hi - f_lo))
