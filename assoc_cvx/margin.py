r"""Storage with a normalised margin kappa, and listwise (tail-average) retrieval.

Margin convention
-----------------
For a memory W of shape (d_out, d_in) fix its scale at
``||W||_F = sqrt(d_out * d_in)`` (``= d`` for a square memory). For patterns
with i.i.d. N(0, 1/d) entries (or uniform on the unit sphere) the score
``z^T W x`` of a random competitor z then has unit variance,

.. math:: \mathbb E_{x, z}\,(z^\top W x)^2 = \lVert W \rVert_F^2/(d_{out} d_{in})
          = 1 ,

so a margin kappa is counted in standard deviations of the competitor scores.
This is the convention of the replica-symmetric prediction of the design notes
(§6), which treats vec W as a spherical perceptron with ``N = d^2`` weights of
norm ``sqrt(N)`` and unit-variance fields: W stores the set *with margin
kappa* when, at that scale,

.. math:: (y_\mu - y_\nu)^\top W x_\mu \ge \kappa
          \quad \forall \mu \ne \nu

(``z_{mu k}`` in place of ``y_nu`` for the decoupled set). With
``kappa* = max_{||W||_F <= 1} min margin`` (the scale-free program) this
holds exactly when ``kappa* >= kappa / sqrt(d_out d_in)``.

Finite-size effect of fluctuating norms
---------------------------------------
The prediction assumes every field has exactly unit variance. With Gaussian
patterns the norms ``||x_mu||`` fluctuate (relative spread about
``1/sqrt(2d)``), and so do those of the target differences. At kappa = 0
this does not matter (storage is unchanged when an input is rescaled), but
at kappa > 0 a short input needs a larger margin relative to its length, so
Gaussian patterns store fewer associations than the prediction, more so as
kappa grows, while patterns uniform on the unit sphere (fixed norms) follow
it more closely. The README gives the measured ratios.

Listwise retrieval
------------------
The listwise criterion of arXiv 2605.05189 asks the correct score to beat the
mean of the top r-fraction of the K competitor scores, plus the margin. With
``q = r K`` and the tail average (conditional value at risk)

.. math:: \mathrm{CVaR}_r(s) = \min_t \; t + \frac{1}{q}\sum_k (s_k - t)_+ ,

which is the mean of the q largest scores when q is an integer, the
constraint ``s_0 - CVaR_r(s) >= kappa`` reads, in terms of the margins
``m_k = s_0 - s_k``,

.. math:: \exists a:\quad a - \frac{1}{q}\sum_k (a - m_k)_+ \ge \kappa ,

the mean of the q smallest margins. It is convex (jointly in W, a and the
slacks), so storage under it is again a second-order cone program. When
``q <= 1`` it is the top-1 constraint (every margin at least kappa).
"""

import logging
import math
import warnings
from numbers import Real

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from assoc_cvx._validation import (
    check_competitors,
    check_int,
    check_matrix,
    check_option,
    check_patterns,
    check_positive,
    rms_row_norm,
)
from assoc_cvx.engine import (
    CERTIFICATE_TOL,
    SOLVER_OPTIONS,
    Attempt,
    StorageResult,
    _check_solver_options,
    decide,
    resolve_solvers,
    solve_program,
)
from assoc_cvx.exceptions import SolverWarning
from assoc_cvx.programs import StorageProgram, _lifted_margins, difference_tensor

__all__ = [
    "MARGIN_SOLVERS",
    "check_kappa",
    "check_listwise",
    "check_r",
    "decide_margin",
    "listwise_margins",
    "margin_program",
    "margin_solvers",
    "topk_recall",
]

logger = logging.getLogger(__name__)

#: Solvers for programs with a margin or the listwise criterion: the
#: Frobenius-ball (second-order cone) solvers. The margin is defined at a fixed
#: Frobenius norm, so the entrywise-bounded LP variant (HiGHS) does not apply.
MARGIN_SOLVERS = ("ECOS", "CLARABEL", "SCS")

#: The package's structured interior-point solver (assoc_cvx.ipm), used for
#: top-1 margins when it is among the solvers.
_IPM = "IPM"

#: Relative slack between a rigorous bound and the required margin.
_BOUND_RTOL = 1e-9
#: Two solvers "agree" that a margin is out of reach when both optimal values
#: are below the required one by at least this relative amount.
_AGREE_RTOL = 1e-5


def check_kappa(kappa, name="kappa"):
    """Return ``kappa`` as a float, or raise unless it is finite and >= 0."""
    if isinstance(kappa, bool) or not isinstance(kappa, Real):
        raise TypeError(
            f"{name} must be a finite number >= 0; got {kappa!r} "
            f"of type {type(kappa).__name__}."
        )
    if not (math.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {kappa!r}.")
    return float(kappa)


def check_r(r, name="r"):
    """Return ``r`` as a float, or raise unless it is in (0, 1]."""
    if isinstance(r, bool) or not isinstance(r, Real):
        raise TypeError(
            f"{name} must be a number in (0, 1]; got {r!r} of type {type(r).__name__}."
        )
    if not (math.isfinite(r) and 0 < r <= 1):
        raise ValueError(f"{name} must be a number in (0, 1]; got {r!r}.")
    return float(r)


def _tail_size(r, n_competitors):
    """``q = r K``, the (fractional) number of competitors averaged."""
    return None if r is None else r * n_competitors


def listwise_margins(M, r=None):
    r"""Per-input listwise statistic of a margin array.

    Parameters
    ----------
    M : ndarray of shape (p, K)
        Margins ``m[mu, k] = s_mu0 - s_muk`` (correct score minus score of
        competitor k).
    r : float in (0, 1] or None, default=None
        Tail fraction; None (or ``r K <= 1``) gives the smallest margin.

    Returns
    -------
    stat : ndarray of shape (p,)
        ``max_a a - (1/q) sum_k (a - m_k)_+`` with ``q = r K``: the mean of
        the q smallest margins (interpolated when q is fractional), which is
        the correct score minus the mean of the top r-fraction of competitor
        scores.
    """
    M = np.asarray(M, dtype=np.float64)
    K = M.shape[1]
    q = _tail_size(r, K)
    if q is None or q <= 1:
        return M.min(axis=1)
    q = min(q, K)
    S = np.sort(M, axis=1)
    n = math.floor(q)
    total = S[:, :n].sum(axis=1)
    frac = q - n
    if n < K and frac > 0:
        total = total + frac * S[:, n]
    return total / q


def margin_program(X, D, *, r=None):
    r"""Scale-free program of the margin (and listwise) criterion.

    .. math::
        \max_{W, \kappa', a, u \ge 0} \ \kappa' \quad \text{s.t.} \quad
        u_{\mu k} \ge a_\mu - D_{\mu k}^\top W x_\mu, \quad
        a_\mu - \frac{1}{q} \sum_k u_{\mu k} \ge \kappa', \quad
        \lVert W \rVert_F \le 1 ,

    with ``q = r K``; for ``r=None`` or ``q <= 1`` it is the top-1 program
    (every margin at least kappa'). The returned program's
    ``margin_constraint`` is the constraint whose dual values are the
    certificate weights (the hinge rows of the listwise program).

    Parameters
    ----------
    X : ndarray of shape (p, d_in)
    D : ndarray of shape (p, K, d_out)
    r : float in (0, 1] or None, default=None

    Returns
    -------
    program : StorageProgram
    """
    p, K = D.shape[:2]
    W, _, lift, m = _lifted_margins(X, D)
    kappa = cp.Variable(name="kappa")
    ball = cp.norm(W, "fro") <= 1
    q = _tail_size(r, K)
    if q is None or q <= 1:
        margin_constraint = m >= kappa
        constraints = [lift, margin_constraint, ball]
    else:
        a = cp.Variable(p, name="a")
        u = cp.Variable(p * K, nonneg=True, name="u")
        spread = sp.kron(sp.eye(p), np.ones((K, 1)), format="csr")  # (pK, p)
        margin_constraint = u >= spread @ a - m
        tail = a - (spread.T @ u) / q >= kappa
        constraints = [lift, margin_constraint, tail, ball]
    problem = cp.Problem(cp.Maximize(kappa), constraints)
    return StorageProgram(problem, W, margin_constraint, kappa)


def _cap_weights(nu, q):
    """Make dual weights of one input feasible for the tail-average dual.

    The dual of the listwise program needs ``0 <= nu_k <= (sum_k nu_k) / q``.
    Returns ``min(nu, c)`` with the c > 0 solving ``sum_k min(nu_k, c) = q c``,
    or zeros when fewer than q weights are positive (no such c).
    """
    if q <= 1:
        return nu
    v = np.sort(nu)[::-1]
    tail = np.cumsum(v[::-1])[::-1]  # tail[j] = v[j] + v[j + 1] + ...
    for j in range(min(v.size, math.ceil(q))):
        if j >= q:
            break
        c = tail[j] / (q - j)
        if c > 0 and c >= v[j] and (j == 0 or c <= v[j - 1]):
            return np.minimum(nu, c)
    return np.zeros_like(nu)


def _certificate_bound(weights, X, D, r):
    """Upper bound on the best normalised (listwise) margin from dual weights.

    Returns ``(bound, weights)`` with the weights made feasible and
    normalised (summing to one); NaN when nothing is left.
    """
    lam = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    lam = lam.reshape(D.shape[:2])
    q = _tail_size(r, D.shape[1])
    if q is not None and q > 1:
        lam = np.array([_cap_weights(row, q) for row in lam])
    total = lam.sum()
    if not (np.isfinite(total) and total > 0):
        return np.nan, None
    lam = lam / total
    G = np.einsum("mk,mkd->md", lam, D).T @ X
    return float(np.linalg.norm(G)), lam


def _verified_stat(W, X0, D0, r, scale_to):
    """Rigorous lower bound on the smallest listwise statistic of W.

    W is rescaled to Frobenius norm ``scale_to`` (slightly below, to absorb
    rounding); each margin is lowered by the bound on its float64 rounding
    error before the statistic (monotone in the margins) is taken.
    Returns ``(lower_bound, W_scaled)``; ``-inf`` for an unusable W.
    """
    if W is None or not np.all(np.isfinite(W)):
        return -np.inf, None
    W = np.asarray(W, dtype=np.float64)
    norm = np.linalg.norm(W)
    if not norm > 0:
        return -np.inf, None
    W = W * (scale_to / norm * (1 - 1e-12))
    V = X0 @ W.T
    m = np.einsum("mkd,md->mk", D0, V)
    size = np.einsum("mkd,md->mk", np.abs(D0), np.abs(X0) @ np.abs(W).T)
    gamma = (X0.shape[1] + D0.shape[2] + 2) * np.finfo(np.float64).eps
    return float(listwise_margins(m - gamma * size, r).min()), W


def decide_margin(
    X,
    D,
    *,
    solvers,
    constraints,
    kappa=0.0,
    r=None,
    certificate_tol=CERTIFICATE_TOL,
    solver_options=None,
    mode="max_margin",
) -> StorageResult:
    r"""Decide storage with margin kappa and/or the listwise criterion.

    The engine behind ``check_storage(..., kappa=...)`` and
    :func:`check_listwise`, for validated input; it issues no warning.

    Parameters
    ----------
    X : ndarray of shape (p, d_in)
    D : ndarray of shape (p, K, d_out)
        Difference vectors (see :func:`~assoc_cvx.programs.difference_tensor`).
    solvers : list of str
        Solver names. When the first is ``"IPM"`` and the criterion is top-1
        with kappa > 0, the structured solver's max-margin solve decides
        first (its W and its dual weights are checked here, as below);
        otherwise, and when that is not decisive, the ones in
        :data:`MARGIN_SOLVERS` are used.
    constraints : {"coupled", "decoupled"}
        Recorded in the result.
    kappa : float, default=0.0
        Required margin at ``||W||_F = sqrt(d_out d_in)`` (see the module
        docstring).
    r : float in (0, 1] or None, default=None
        Tail fraction of the listwise criterion; None for top-1.
    certificate_tol : float, default=1e-8
        With ``kappa == 0``: "not storable" needs a certificate bound on the
        best normalised margin of at most this (on the data scaled to unit
        root-mean-square rows, without preconditioning).
    solver_options : dict, default=None
        Keyword arguments by canonical solver name.
    mode : {"max_margin", "verdict"}, default="max_margin"
        Accepted for the signature of :func:`~assoc_cvx.engine.decide`; the
        cvxpy solvers always solve to optimality, so both give the same.

    Returns
    -------
    result : StorageResult
        ``W`` (when stored) has ``||W||_F = sqrt(d_out d_in)`` and its
        statistic (smallest margin, or smallest listwise statistic) is at
        least kappa; ``margin`` is that statistic for ``W / ||W||_F``;
        ``margin_lower``/``margin_upper`` bound the best one (normalised
        units of the data as given).

    Raises
    ------
    ValueError
        When no solver in :data:`MARGIN_SOLVERS` is among ``solvers``.

    Notes
    -----
    Verdicts, with evidence recomputed in float64:

    - stored: the solver's W, rescaled to ``||W||_F = sqrt(d_out d_in)``, has
      every statistic at least kappa (above zero when kappa is zero) after
      each margin is lowered by its rounding-error bound;
    - not storable: dual weights lambda >= 0 (made feasible for the
      tail-average dual, ``lambda_{mu k} <= sum_k lambda_{mu k} / q``) bound
      the best normalised statistic by ``||sum lambda D x^T||_F / sum lambda``
      (weak duality), and the bound is below ``kappa / sqrt(d_out d_in)``
      (at most ``certificate_tol`` on rescaled data when kappa is zero);
      failing a certificate, two different solvers whose optimal values are
      both below the requirement by a relative 1e-5;
    - anything else is undecided.

    Unlike :func:`~assoc_cvx.engine.decide`, no preconditioned formulation
    is tried: a positive margin is defined in the units of the data, which
    preconditioning would change.
    """
    names = [s for s in solvers if s in MARGIN_SOLVERS]
    q = _tail_size(r, D.shape[1])
    if solvers[0] == _IPM and kappa > 0 and (q is None or q <= 1):
        fast = _decide_by_ipm(X, D, constraints, kappa, certificate_tol, solver_options)
        if fast is not None or not names:
            return fast
    if not names:
        raise ValueError(
            "Storage with a margin or listwise retrieval needs one of the "
            f"solvers {', '.join(MARGIN_SOLVERS)}; got {', '.join(solvers)}."
        )
    _p, _K, d_out = D.shape
    d_in = X.shape[1]
    scale_to = math.sqrt(d_out * d_in)
    sx, sd = rms_row_norm(X), rms_row_norm(D)
    Xs, Ds = X / sx, D / sd
    # Requirement on the best statistic of W/||W||_F, data as given / rescaled.
    need = kappa / scale_to
    need_scaled = need / (sx * sd)
    program = margin_program(Xs, Ds, r=r)
    attempts, below = [], set()
    total_compile = total_solve = 0.0
    verdict = "undecided"
    lower = upper = certificate = np.nan
    W_out = weights_out = None
    last = None
    for name in names:
        options = {
            **SOLVER_OPTIONS.get(name, {}),
            **(solver_options or {}).get(name, {}),
        }
        run = solve_program(program, name, options)
        total_compile += run.compile_time
        total_solve += run.solve_time
        message = run.message
        verdict = "undecided"
        if run.status == cp.OPTIMAL:
            stat, W_scaled = _verified_stat(program.W.value, X, D, r, scale_to)
            lower = stat / scale_to
            bound, weights = _certificate_bound(
                program.margin_constraint.dual_value, Xs, Ds, r
            )
            upper = bound * sx * sd
            certificate = bound
            if kappa > 0:
                ok, refuted = stat >= kappa, bound * (1 + _BOUND_RTOL) < need_scaled
            else:
                ok, refuted = stat > 0, bound <= certificate_tol
            value = program.kappa.value
            if value is not None and value < need_scaled * (1 - _AGREE_RTOL):
                below.add(name)
            if ok:
                verdict, W_out = "stored", W_scaled
            elif refuted:
                verdict, weights_out = "not_storable", weights
            elif kappa > 0 and len(below) >= 2:
                verdict = "not_storable"
                message = f"optimal values of {', '.join(sorted(below))} agree"
            else:
                message = (
                    f"margin bounds [{lower:.3g}, {upper:.3g}] against the "
                    f"required {need:.3g}"
                )
        else:
            message = message or f"status {run.status!r} is not trusted"
        last = name
        attempts.append(
            Attempt(
                name,
                "plain",
                run.status,
                verdict,
                run.compile_time,
                run.solve_time,
                message,
            )
        )
        if verdict != "undecided":
            break
        logger.info("%s undecided: %s", name, message)
    return StorageResult(
        stored={"stored": True, "not_storable": False}.get(verdict),
        status=verdict,
        W=W_out,
        max_margin=verdict == "stored" and r is None,
        support=None,
        margin=lower if verdict == "stored" else None,
        margin_lower=lower,
        margin_upper=upper,
        certificate=certificate,
        dual_weights=weights_out,
        constraints=constraints,
        solver=last,
        solver_status=attempts[-1].solver_status,
        compile_time=total_compile,
        solve_time=total_solve,
        attempts=tuple(attempts),
    )


def _decide_by_ipm(X, D, constraints, kappa, certificate_tol, solver_options):
    """Top-1 margin verdict from the structured solver's max-margin solve.

    Its W is the max-margin matrix and its dual weights bound kappa* from
    above, so both sides of ``kappa* >= kappa / sqrt(d_out d_in)`` are
    checked in float64 here. Returns None when neither is decisive.
    """
    scale_to = math.sqrt(D.shape[2] * X.shape[1])
    need = kappa / scale_to
    res = decide(
        X,
        D,
        solvers=[_IPM],
        constraints=constraints,
        certificate_tol=certificate_tol,
        solver_options={k: v for k, v in (solver_options or {}).items() if k == _IPM},
    )
    stat, W_scaled = _verified_stat(res.W, X, D, None, scale_to)
    upper = np.nan
    if res.dual_weights is not None:
        lam = np.clip(res.dual_weights, 0.0, None)
        total = lam.sum()
        if total > 0:
            G = np.einsum("mk,mkd->md", lam, D).T @ X
            upper = float(np.linalg.norm(G)) / total
    if res.stored and stat >= kappa:
        verdict = "stored"
    elif upper * (1 + _BOUND_RTOL) < need:
        # Rigorous even when res is "not storable" (whose certificate is only
        # a bound below certificate_tol): weak duality against kappa itself.
        verdict = "not_storable"
    else:
        return None
    return StorageResult(
        stored=verdict == "stored",
        status=verdict,
        W=W_scaled if verdict == "stored" else None,
        max_margin=verdict == "stored" and res.max_margin,
        support=None,
        margin=stat / scale_to if verdict == "stored" else None,
        margin_lower=stat / scale_to if np.isfinite(stat) else np.nan,
        margin_upper=upper if np.isfinite(upper) else res.margin_upper,
        certificate=res.certificate,
        dual_weights=None if verdict == "stored" else res.dual_weights,
        constraints=constraints,
        solver=_IPM,
        solver_status=res.solver_status,
        compile_time=res.compile_time,
        solve_time=res.solve_time,
        attempts=res.attempts,
    )


def check_listwise(
    X,
    Y,
    *,
    r: float,
    kappa: float = 0.0,
    competitors=None,
    solver: str = "auto",
    fallback: bool = True,
    certificate_tol: float = CERTIFICATE_TOL,
    solver_options: dict | None = None,
) -> StorageResult:
    r"""Decide storage under the listwise (tail-average) retrieval criterion.

    Input mu is retrieved when its target's score beats the mean of the top
    r-fraction of its K competitors' scores by at least kappa (at
    ``||W||_F = d``; see :mod:`assoc_cvx.margin`).

    Parameters
    ----------
    X : array-like of shape (p, d)
        Inputs; p >= 2.
    Y : array-like of shape (p, d)
        Targets.
    r : float in (0, 1]
        Tail fraction: the mean of the top ``r K`` competitor scores
        (interpolated when ``r K`` is not an integer) must be beaten.
        ``r K <= 1`` is ordinary top-1 storage.
    kappa : float, default=0.0
        Margin, in standard deviations of the competitor scores.
    competitors : array-like of shape (p, K, d), default=None
        None: coupled set (K = p - 1 other targets); else private competitors.
    solver : {"auto", "ECOS", "CLARABEL", "SCS"}, default="auto"
        First solver tried (case-insensitive); with ``fallback`` the other
        installed ones follow.
    fallback : bool, default=True
        Try the other installed solvers when one leaves the verdict undecided.
    certificate_tol : float, default=1e-8
        Cut on the certificate bound when kappa is zero.
    solver_options : dict, default=None
        Keyword arguments per solver name for ``cvxpy.Problem.solve``.

    Returns
    -------
    result : StorageResult
        When stored, ``W`` has ``||W||_F = d`` and every input's listwise
        statistic (correct score minus the tail average) at least kappa;
        ``margin`` is the smallest statistic of ``W / ||W||_F``.

    Raises
    ------
    ValueError
        Bad input, r outside (0, 1], negative kappa, or a solver that cannot
        solve the program (HIGHS).
    SolverError
        The requested solver is not installed.

    Warns
    -----
    SolverWarning
        When the verdict is undecided.

    Notes
    -----
    With margins ``m_{mu k} = (y_mu - z_{mu k})^T W x_mu`` and ``q = r K``,
    W stores the set when for every mu

    .. math:: \max_a \; a - \frac1q \sum_k (a - m_{\mu k})_+ \ge \kappa ,

    the tail-average (CVaR) form of arXiv 2605.05189. It is decided by the
    scale-free program of :func:`margin_program`, with evidence as in
    :func:`decide_margin`. The predicted critical load at kappa = 0 is
    ``p / d^2 -> 1 / E[(kappa_r - G)_+^2]`` with
    ``kappa_r = phi(Phi^{-1}(1 - r)) / r`` (design notes §6).

    Examples
    --------
    >>> from assoc_cvx import check_storage, make_associations
    >>> from assoc_cvx.margin import check_listwise
    >>> from assoc_cvx.margin import topk_recall
    >>> X, Y = make_associations(14, 5, random_state=0)
    >>> check_storage(X, Y).status  # beyond top-1 capacity
    'not_storable'
    >>> result = check_listwise(X, Y, r=0.5)  # beat the mean of the top 6.5
    >>> result.status
    'stored'
    >>> topk_recall(result.W, X, Y, k=7)
    1.0
    """
    X, Y = check_patterns(X, Y)
    p, d = X.shape
    r = check_r(r)
    kappa = check_kappa(kappa)
    if competitors is not None:
        competitors = check_competitors(competitors, p, d)
    names = margin_solvers(resolve_solvers(solver, fallback=fallback))
    certificate_tol = check_positive(certificate_tol, "certificate_tol")
    result = decide_margin(
        X,
        difference_tensor(Y, competitors),
        solvers=names,
        constraints="coupled" if competitors is None else "decoupled",
        kappa=kappa,
        r=r,
        certificate_tol=certificate_tol,
        solver_options=_check_solver_options(solver_options),
    )
    if result.stored is None:
        tried = "; ".join(
            f"{a.solver}: {a.solver_status} ({a.message})" for a in result.attempts
        )
        warnings.warn(
            f"Listwise storage of {p} patterns in dimension {d} is undecided "
            f"after {tried}.",
            SolverWarning,
            stacklevel=2,
        )
    return result


def margin_solvers(names):
    """Keep the solvers of ``names`` that can solve margin programs.

    When ``names`` holds no cvxpy cone solver but some other engine, the
    installed ones of :data:`MARGIN_SOLVERS` are used instead; the
    structured solver ``"IPM"``, when first, stays first (it serves top-1
    margins, see :func:`decide_margin`). Raises
    ValueError naming the valid ones when only HIGHS was given (for instance
    ``solver="HIGHS"`` without fallback).
    """
    kept = [s for s in names if s in MARGIN_SOLVERS]
    if not kept and not set(names) <= {"HIGHS"}:
        # Another engine (not a cvxpy solver) was asked for: margins and
        # listwise programs go to the installed cvxpy cone solvers.
        kept = [s for s in MARGIN_SOLVERS if s in cp.installed_solvers()]
    if kept and names[0] == _IPM:  # the structured solver serves top-1 margins
        kept = [_IPM, *kept]
    if not kept:
        raise ValueError(
            "A margin kappa > 0 or listwise retrieval needs a Frobenius-ball "
            f"solver, one of {', '.join(MARGIN_SOLVERS)}; got {', '.join(names)}."
        )
    return kept


def topk_recall(W, X, Y, k=1, *, competitors=None):
    """Fraction of inputs whose target is among the k highest scores.

    Parameters
    ----------
    W : array-like of shape (d_out, d_in)
        Finite real memory.
    X : array-like of shape (p, d_in)
        Inputs; p >= 2, finite and real (checked as by
        :func:`~assoc_cvx.check_storage`).
    Y : array-like of shape (p, d_out)
        Targets.
    k : int, default=1
        Rank cut, an integer in [1, K + 1] where K + 1 is the number of
        candidates of each input (its target and its K competitors): input mu
        counts when fewer than k competitors score at least as high as its
        target (ties count against it). k = K + 1 counts every input.
    competitors : array-like of shape (p, K, d_out), default=None
        None ranks against the other targets (K = p - 1); else against
        private competitors.

    Returns
    -------
    recall : float
        In [0, 1].

    Raises
    ------
    ValueError
        Arrays of the wrong shape, with NaN or infinity, or k outside
        [1, K + 1].
    TypeError
        Complex or non-numeric arrays, or k not an integer.
    """
    X, Y = check_patterns(X, Y, same_width=False)
    p, d_in = X.shape
    d_out = Y.shape[1]
    if competitors is not None:
        competitors = check_competitors(competitors, p, d_out)
    W = check_matrix(W, "W", (d_out, d_in), what="Y's columns by X's columns")
    n_candidates = 1 + (p - 1 if competitors is None else competitors.shape[1])
    k = check_int(k, "k")
    if k > n_candidates:
        raise ValueError(
            f"k must be an integer in [1, {n_candidates}], the number of "
            f"candidates of each input (its target and its competitors); got {k}."
        )
    D = difference_tensor(Y, competitors)
    m = np.einsum("mkd,md->mk", D, X @ W.T)
    return float(np.mean((m <= 0).sum(axis=1) < k))


def _check_retrieval(retrieval, r):
    """Validate a (retrieval, r) pair; return r (None for top-1)."""
    check_option(retrieval, "retrieval", ("top1", "listwise"))
    if retrieval == "top1":
        if r is not None:
            raise ValueError(
                f"r is only used with retrieval='listwise'; got r={r!r} with "
                "retrieval='top1'."
            )
        return None
    if r is None:
        raise ValueError("retrieval='listwise' needs r, a number in (0, 1].")
    return check_r(r)
