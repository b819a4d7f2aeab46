r"""Constraint sets and the convex storage programs built from them.

Both constraint sets are held in one form: a tensor ``D`` of shape (p, K, d_out)
of *difference vectors*, one row per competitor, so that the margin of
competitor k of input mu under a matrix W is

.. math:: m_{\mu k}(W) = D_{\mu k}^\top W x_\mu .

Coupled: ``D[mu, k] = y_mu - y_nu`` over the other targets nu != mu (K = p - 1).
Decoupled: ``D[mu, k] = y_mu - z_{mu, k}`` over private competitors.

The cvxpy programs are posed in the lifted form: an auxiliary variable
``T = W X^T`` of shape (d_out, p) and a sparse block-diagonal matrix acting on
``vec(T)``. Writing the constraints directly on W would make cvxpy multiply
out the dense p K x d_out d_in constraint matrix.
"""

import weakref
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

__all__ = [
    "CONSTRAINT_SETS",
    "StorageProgram",
    "certificate_matrix",
    "constraint_matrix",
    "difference_tensor",
    "margins",
    "max_margin_program",
    "scale_free_program",
    "soft_margin_program",
]

CONSTRAINT_SETS = ("coupled", "decoupled")


def other_indices(n_patterns):
    """Return the (p, p - 1) array whose row mu lists every nu != mu in order."""
    p = n_patterns
    full = np.broadcast_to(np.arange(p), (p, p))
    return full[~np.eye(p, dtype=bool)].reshape(p, p - 1)


def difference_tensor(Y, competitors=None):
    """Difference vectors ``D`` of shape (p, K, d_out) of a constraint set.

    Parameters
    ----------
    Y : ndarray of shape (p, d_out)
        Targets.
    competitors : ndarray of shape (p, K, d_out), default=None
        Private competitors (decoupled set); None uses the other targets
        (coupled set, K = p - 1).

    Returns
    -------
    D : ndarray of shape (p, K, d_out)
    """
    if competitors is None:
        return Y[:, None, :] - Y[other_indices(Y.shape[0])]
    return Y[:, None, :] - competitors


def margins(W, X, D):
    """Margins ``m[mu, k] = D[mu, k] @ W @ X[mu]``, shape (p, K), in float64."""
    V = X @ np.asarray(W, dtype=np.float64).T
    return np.einsum("mkd,md->mk", D, V)


def certificate_matrix(weights, X, D):
    r"""Return :math:`A^\top \lambda` as a (d_out, d_in) matrix.

    ``A^T lambda = sum_{mu, k} lambda[mu, k] D[mu, k] x_mu^T``. When
    ``weights >= 0`` sums to one, its Frobenius norm bounds the best normalised
    margin from above (Gordan's theorem makes it zero exactly when no W
    stores the set).
    """
    return np.einsum("mk,mkd->md", weights, D).T @ X


def constraint_matrix(D):
    """Sparse matrix of shape (p K, p d_out) mapping ``vec(W X^T)`` to margins.

    ``vec`` stacks columns (``order="F"``), so column mu of ``T = W X^T``
    occupies entries ``mu * d_out`` to ``(mu + 1) * d_out``.
    """
    p, K, d_out = D.shape
    cols = (np.arange(p)[:, None, None] * d_out + np.arange(d_out)).repeat(K, axis=1)
    indptr = np.arange(0, p * K * d_out + 1, d_out)
    return sp.csr_matrix(
        (D.reshape(-1), cols.reshape(-1), indptr), shape=(p * K, p * d_out)
    )


@dataclass(frozen=True)
class StorageProgram:
    """A cvxpy storage program with handles on its parts.

    Attributes
    ----------
    problem : cvxpy.Problem
        The program.
    W : cvxpy.Variable of shape (d_out, d_in)
        The memory matrix.
    margin_constraint : cvxpy.Constraint
        The p K margin rows; its dual values are the weights of a certificate.
    kappa : cvxpy.Variable or None
        The common margin (scale-free program only).
    T : cvxpy.Variable or None
        The lifted products ``W X^T``.
    X : ndarray of shape (p, d_in) or None
        The inputs the program was built from.
    D : ndarray of shape (p, K, d_out) or None
        The difference vectors it was built from.
    kind : str
        ``"scale_free"``, ``"max_margin"`` or ``"soft_margin"``.
    norm : str
        The norm ball of the scale-free program (``"fro"`` or ``"max"``).
    """

    problem: cp.Problem
    W: cp.Variable
    margin_constraint: cp.Constraint
    kappa: cp.Variable | None = None
    T: cp.Variable | None = None
    X: np.ndarray | None = field(default=None, repr=False)
    D: np.ndarray | None = field(default=None, repr=False)
    kind: str = ""
    norm: str = "fro"


#: The storage programs built here, by problem, for the structured solve
#: method (see :mod:`assoc_cvx.ipm`).
_PROGRAMS = weakref.WeakKeyDictionary()


def _registered(program):
    _PROGRAMS[program.problem] = program
    return program


def storage_program_of(problem):
    """The :class:`StorageProgram` a cvxpy problem was built as, or None."""
    return _PROGRAMS.get(problem)


def _lifted_margins(X, D):
    p, d_in = X.shape
    d_out = D.shape[2]
    W = cp.Variable((d_out, d_in), name="W")
    T = cp.Variable((d_out, p), name="T")
    lift = T == W @ X.T
    return W, T, lift, constraint_matrix(D) @ cp.vec(T, order="F")


def scale_free_program(X, D, *, norm="fro"):
    r"""The scale-free program that decides storage.

    .. math::
        \max_{W, \kappa} \ \kappa \quad \text{s.t.} \quad
        D_{\mu k}^\top W x_\mu \ge \kappa \ \ \forall \mu, k, \qquad
        \lVert W \rVert \le 1 .

    It is always feasible and bounded; its optimum kappa* is positive exactly
    when the set can be stored. ``norm="fro"`` bounds the Frobenius norm (a
    second-order cone program; kappa* is the best normalised margin),
    ``norm="max"`` bounds every entry (a linear program, for LP solvers).
    """
    W, T, lift, m = _lifted_margins(X, D)
    kappa = cp.Variable(name="kappa")
    margin_constraint = m >= kappa
    if norm == "fro":
        ball = cp.norm(W, "fro") <= 1
    elif norm == "max":
        ball = cp.abs(W) <= 1
    else:
        raise ValueError(f"norm must be 'fro' or 'max'; got {norm!r}.")
    problem = cp.Problem(cp.Maximize(kappa), [lift, margin_constraint, ball])
    return _registered(
        StorageProgram(
            problem, W, margin_constraint, kappa, T, X, D, "scale_free", norm
        )
    )


def max_margin_program(X, D):
    r"""The max-margin program: minimise ``||W||_F^2`` s.t. every margin >= 1.

    .. math::
        \min_W \ \lVert W \rVert_F^2 \quad \text{s.t.} \quad
        D_{\mu k}^\top W x_\mu \ge 1 .

    Infeasible when the set cannot be stored. Its solution is the scale-free
    optimum divided by kappa*, but it is badly scaled near capacity: use the
    scale-free program for verdicts.
    """
    W, T, lift, m = _lifted_margins(X, D)
    margin_constraint = m >= 1
    problem = cp.Problem(cp.Minimize(cp.sum_squares(W)), [lift, margin_constraint])
    return _registered(
        StorageProgram(problem, W, margin_constraint, None, T, X, D, "max_margin")
    )


def soft_margin_program(X, D, *, C=1.0):
    r"""The soft-margin program, always feasible.

    .. math::
        \min_{W, \xi \ge 0} \ \tfrac12 \lVert W \rVert_F^2 + C \sum_{\mu k}
        \xi_{\mu k} \quad \text{s.t.} \quad D_{\mu k}^\top W x_\mu \ge 1 -
        \xi_{\mu k} .
    """
    W, T, lift, m = _lifted_margins(X, D)
    slack = cp.Variable(m.shape[0], nonneg=True, name="slack")
    margin_constraint = m + slack >= 1
    problem = cp.Problem(
        cp.Minimize(0.5 * cp.sum_squares(W) + C * cp.sum(slack)),
        [lift, margin_constraint],
    )
    return StorageProgram(problem, W, margin_constraint, None, T, X, D, "soft_margin")
