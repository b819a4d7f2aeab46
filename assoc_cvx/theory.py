"""Closed-form capacity predictions."""

import numpy as np
from scipy.special import lambertw

from assoc_cvx._validation import check_int

__all__ = ["asymptotic_capacity", "capacity_alpha"]


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
    d = check_int(n_features, "n_features")
    c = d * d / 2.0
    return float(c / lambertw(c).real)


def capacity_alpha(n_patterns, n_features):
    """Load ``alpha = p log p / d^2`` (natural logarithm).

    At the capacity of a d x d linear memory it tends to 1/2 as d grows.

    Parameters
    ----------
    n_patterns : float or array-like
        Number(s) of patterns p.
    n_features : int
        Dimension d.

    Returns
    -------
    alpha : float or ndarray
        Same shape as ``n_patterns``.
    """
    p = np.asarray(n_patterns, dtype=float)
    return p * np.log(p) / float(n_features) ** 2
