"""Exact rational confirmation of "not storable" certificates (small d).

Gordan's theorem: no W has every margin ``a_r^T vec(W) > 0`` exactly when some
lambda >= 0, lambda != 0, has ``A^T lambda = 0``. Given approximate dual
weights, a vertex of ``{lambda >= 0, A^T lambda = 0, sum(lambda) = 1}`` is found
in floating point on their support, and the linear system on that vertex's
support is then solved in rational arithmetic on the float64 data, whose
entries are exact rationals. Differences ``y_mu - y_nu`` are formed exactly too,
so the confirmation is about the data as given, not their rounded differences.
"""

from fractions import Fraction

import numpy as np
from scipy.optimize import linprog

from assoc_cvx.programs import other_indices

__all__ = ["confirm_not_storable"]

#: Weights below this fraction of the largest are dropped from the support.
_SUPPORT_CUT = 1e-9


def _row_index(p, K, competitors):
    """(mu, competitor row) of each (mu, k): the row of Y or of competitors[mu]."""
    if competitors is None:
        return other_indices(p)
    return np.broadcast_to(np.arange(K), (p, K))


def _exact_row(x, y, z):
    """``vec((y - z) x^T)`` in rationals, index ``a * d_in + i``."""
    diff = [Fraction(a) - Fraction(b) for a, b in zip(y, z, strict=True)]
    xs = [Fraction(v) for v in x]
    return [da * xi for da in diff for xi in xs]


def _solve_exact(columns):
    """Exact solution of ``[A_B^T; 1^T] lam = [0; 1]``, or None.

    ``columns`` holds one rational row ``a_r`` per support element. Returns
    the unique solution, or None when the system has none or many.
    """
    n_unknown = len(columns)
    n_eq = len(columns[0]) + 1
    # Augmented matrix, one row per equation.
    rows = [
        [columns[j][i] for j in range(n_unknown)] + [Fraction(0)]
        for i in range(n_eq - 1)
    ]
    rows.append([Fraction(1)] * n_unknown + [Fraction(1)])
    pivots = []
    r = 0
    for c in range(n_unknown):
        pivot = next((i for i in range(r, n_eq) if rows[i][c] != 0), None)
        if pivot is None:
            return None  # a free variable: not a vertex
        rows[r], rows[pivot] = rows[pivot], rows[r]
        inv = 1 / rows[r][c]
        rows[r] = [v * inv for v in rows[r]]
        for i in range(n_eq):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    if any(rows[i][-1] != 0 for i in range(r, n_eq)):
        return None  # inconsistent
    return [rows[i][-1] for i in range(n_unknown)]


def confirm_not_storable(X, Y, competitors, weights):
    """Confirm in exact arithmetic that no W stores the set.

    Parameters
    ----------
    X, Y : ndarray of shape (p, d)
        The data as given.
    competitors : ndarray of shape (p, K, d) or None
        Decoupled competitors, or None for the coupled set.
    weights : ndarray of shape (p, K)
        Approximate certificate weights (lambda >= 0).

    Returns
    -------
    support : list of ((int, int), Fraction) or None
        Rows ``(mu, k)`` and exact weights lambda > 0 summing to one with
        ``A^T lambda = 0`` exactly, or None when none was found from these
        weights.
    """
    p, K = weights.shape
    targets = _row_index(p, K, competitors)
    competitor_rows = Y if competitors is None else None
    flat = weights.ravel()
    candidates = np.flatnonzero(flat > _SUPPORT_CUT * flat.max())

    def competitor(mu, k):
        if competitor_rows is not None:
            return competitor_rows[targets[mu, k]]
        return competitors[mu, k]

    for r in candidates:  # an exactly zero row is a certificate on its own
        mu, k = divmod(int(r), K)
        if not any(_exact_row(X[mu], Y[mu], competitor(mu, k))):
            return [((mu, k), Fraction(1))]
    rows_float = np.array(
        [
            np.outer(Y[mu] - competitor(mu, k), X[mu]).ravel()
            for mu, k in (divmod(int(r), K) for r in candidates)
        ]
    )
    # A vertex of {lam >= 0, A^T lam = 0, sum lam = 1} on the candidates.
    n = rows_float.shape[1]
    scale = np.abs(rows_float).max()
    if not scale > 0:
        return None
    A_eq = np.vstack([rows_float.T / scale, np.ones(len(candidates))])
    b_eq = np.zeros(n + 1)
    b_eq[-1] = 1.0
    lp = linprog(
        np.zeros(len(candidates)),
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=(0, None),
        method="highs",
    )
    if lp.status != 0:
        return None
    basis = candidates[lp.x > _SUPPORT_CUT * lp.x.max()]
    pairs = [divmod(int(r), K) for r in basis]
    columns = [_exact_row(X[mu], Y[mu], competitor(mu, k)) for mu, k in pairs]
    lam = _solve_exact(columns)
    if lam is None or any(v <= 0 for v in lam):
        return None
    return list(zip(pairs, lam, strict=True))
