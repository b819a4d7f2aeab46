"""Deciding storage: solver choice, status mapping and certificates."""

import dataclasses
import functools
import logging
import os
import sys
import time
import warnings
import weakref
from dataclasses import dataclass, field
from fractions import Fraction

import cvxpy as cp
import numpy as np
import scipy.optimize
from cvxpy.reductions.solution import Solution

from assoc_cvx._exact import confirm_not_storable
from assoc_cvx._validation import (
    MAX_ABS,
    MIN_ABS,
    check_competitors,
    check_option,
    check_patterns,
    check_positive,
    first_row_out_of_range,
    rms_row_norm,
)
from assoc_cvx.exceptions import SolverError, SolverWarning
from assoc_cvx.ipm import (
    IPM_OPTIONS,
    check_ipm_options,
    check_memory,
    solve_storage_ipm,
)
from assoc_cvx.programs import (
    certificate_matrix,
    difference_tensor,
    margins,
    scale_free_program,
    storage_program_of,
)

__all__ = [
    "CERTIFICATE_TOL",
    "IPM_METHOD",
    "SOLVERS",
    "SOLVER_OPTIONS",
    "Attempt",
    "SolverRun",
    "StorageResult",
    "check_storage",
    "decide",
    "resolve_solvers",
    "solve_program",
    "storage_result_of",
]

logger = logging.getLogger(__name__)

#: Solvers that can decide storage, in the order ``solver="auto"`` tries them,
#: with the norm ball each one is given (HiGHS solves linear programs only).
#: "IPM" is the package's structured interior-point solver (:mod:`assoc_cvx.ipm`);
#: the others are solved through cvxpy.
SOLVERS = {"IPM": "fro", "ECOS": "fro", "CLARABEL": "fro", "HIGHS": "max", "SCS": "fro"}

#: What ``mode`` of :func:`check_storage` may be.
MODES = ("max_margin", "verdict")

#: Margins of the max-margin W within this relative distance of the smallest
#: one count as support constraints (``StorageResult.support``).
SUPPORT_RTOL = 1e-6

#: Largest dimension for ``check_storage(..., exact=True)``.
EXACT_MAX_DIM = 6

#: Default cut on the certificate bound of the best normalised margin of the
#: preconditioned instance (see check_storage). Storable threshold instances
#: have kappa* >= 2.7e-5 (d <= 40). On the 110 unstorable instances of the
#: reference file the bound reached at most 3e-11 (ECOS), 3e-15 (HiGHS),
#: 5e-9 (Clarabel at its default tolerances; tighter ones make it end
#: "inaccurate") and 1e-8 (SCS): above the cut the attempt is undecided and the
#: next formulation or solver decides.
CERTIFICATE_TOL = 1e-8

#: cvxpy keywords that would change the program or the solver chosen.
_RESERVED_OPTIONS = frozenset(
    {"solver", "gp", "qcp", "method", "requires_grad", "enforce_dpp", "ignore_dpp"}
)
_PIP_NAMES = {
    "IPM": "assoc_cvx",
    "ECOS": "ecos",
    "CLARABEL": "clarabel",
    "HIGHS": "highspy",
    "SCS": "scs",
}
#: Options each solver gets unless the caller overrides them.
SOLVER_OPTIONS = {
    # One BLAS thread: two threads on a busy 2-core machine made a d = 20
    # solve 30-60 times slower than one.
    "IPM": {"n_threads": 1},
    "ECOS": {"max_iters": 200},
    "HIGHS": {"highs_options": {"output_flag": False}},
    # SCS's default accuracy (1e-4) leaves certificates far above the cut.
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9},
}


@dataclass(frozen=True)
class SolverRun:
    """What one call of a solver on a program returned.

    Attributes
    ----------
    status : str
        cvxpy's status, or ``"error"`` when the solver raised.
    compile_time, solve_time : float
        Seconds spent by cvxpy compiling and by the solver.
    message : str
        The solver's error, or an empty string.
    """

    status: str
    compile_time: float
    solve_time: float
    message: str = ""


@dataclass(frozen=True)
class Attempt:
    """One solver's try at an instance, in one formulation.

    Attributes
    ----------
    solver : str
        Solver name.
    formulation : {"plain", "preconditioned"}
        ``"plain"``: the data as given (up to one global scale).
        ``"preconditioned"``: inputs and difference vectors brought to
        radial isotropic position, tried when the plain one is undecided.
    solver_status : str
        The status cvxpy reported, or ``"error"`` when the solver raised.
    verdict : {"stored", "not_storable", "undecided"}
        What the evidence from this attempt supports.
    compile_time, solve_time : float
        Seconds spent by cvxpy compiling and by the solver.
    message : str
        Why the attempt was undecided, or an empty string.
    """

    solver: str
    formulation: str
    solver_status: str
    verdict: str
    compile_time: float
    solve_time: float
    message: str = ""


@dataclass(frozen=True)
class StorageResult:
    """Outcome of :func:`check_storage`.

    Attributes
    ----------
    stored : bool or None
        True: every association is stored by ``W`` (margins recomputed in
        float64, each above its rounding error). False: dual weights certify
        that no W stores them, up to the cut ``certificate_tol`` on the
        certificate bound (see :func:`check_storage`). None: undecided.
    status : {"stored", "not_storable", "undecided"}
        The same verdict as a string.
    W : ndarray of shape (d, d) or None
        When stored, a matrix whose smallest recomputed margin
        ``(y_mu - y_nu)^T W x_mu`` is one. It is the max-margin matrix (of
        smallest Frobenius norm) to solver accuracy when ``max_margin`` is
        True; otherwise it stores the set but need not be of smallest norm.
        With ``kappa > 0`` it is scaled instead to ``||W||_F = d``, so that
        its smallest margin is at least ``kappa``.
    max_margin : bool
        Whether ``W`` is the max-margin matrix: the verdict came from a
        Frobenius-ball solver (IPM, ECOS, CLARABEL, SCS) solved to optimality
        on the plain formulation.
    support : ndarray of shape (n_support, 2) or None
        When ``max_margin`` and ``kappa == 0``, the support constraints: the
        ``(mu, k)`` whose margin under ``W`` is within a relative
        ``SUPPORT_RTOL`` (1e-6) of the smallest, one. Near capacity there are
        about d^2 of them. None with ``kappa > 0``.
    margin : float or None
        When stored, the smallest margin of ``W / ||W||_F``, recomputed in
        float64: the best normalised margin kappa* to solver accuracy when
        ``max_margin`` is True, else a lower bound on it.
    margin_lower, margin_upper : float
        Bounds on kappa* from the evidence: the recomputed margin of the
        solver's W (lower) and ``||A^T lambda||_F / sum(lambda)`` for the dual
        weights (upper). NaN where the solver gave nothing to compute them from.
    certificate : float
        The bound compared with ``certificate_tol``: that of the dual weights
        on the preconditioned instance (see :func:`check_storage`). NaN when
        stored (it is not computed then) or when there were no dual weights.
    dual_weights : ndarray of shape (p, K) or None
        When not storable, the certificate lambda >= 0 (summing to one) over
        the margin constraints, ``[mu, k]`` for competitor k of input mu.
        When stored with ``max_margin``, the solver's optimal dual weights
        (summing to one; they vanish off the support), or None if it gave
        none.
    constraints : {"coupled", "decoupled"}
        Constraint set decided.
    solver : str or None
        The solver whose answer gave the verdict (the last one tried when
        undecided).
    solver_status : str
        Its status as cvxpy reported it (for the IPM, its own status:
        ``"optimal"``, ``"converged"`` when a ``gap_tol`` looser than 1e-8
        was met, so that W is not claimed max-margin, ``"stored"``,
        ``"not_storable"``, ``"max_iter"``, ...). The verdict comes from the
        evidence, not the status: a run that ends with ``"max_iter"`` is "not
        storable" when its dual weights, polished, certify it.
    compile_time, solve_time : float
        Seconds, summed over every attempt.
    attempts : tuple of Attempt
        Every solver and formulation tried, in order.
    exact : bool
        True when "not storable" was confirmed in exact rational arithmetic
        (``check_storage(..., exact=True)``): ``dual_weights`` then hold, to
        float64 rounding, exact weights with ``A^T lambda = 0``, and
        ``certificate`` is 0.
    """

    stored: bool | None
    status: str
    W: np.ndarray | None
    max_margin: bool
    support: np.ndarray | None
    margin: float | None
    margin_lower: float
    margin_upper: float
    certificate: float
    dual_weights: np.ndarray | None
    constraints: str
    solver: str | None
    solver_status: str
    compile_time: float
    solve_time: float
    attempts: tuple = field(default=())
    exact: bool = False

    def __repr__(self):
        margin = "None" if self.margin is None else f"{self.margin:.3g}"
        return (
            f"StorageResult(status={self.status!r}, margin={margin}, "
            f"constraints={self.constraints!r}, solver={self.solver!r}, "
            f"solve_time={self.solve_time:.3g})"
        )


def resolve_solvers(solver: str, *, fallback: bool = True) -> list[str]:
    """Return the solver names to try, in order.

    Parameters
    ----------
    solver : str
        ``"auto"`` or a name in :data:`SOLVERS` (case-insensitive).
    fallback : bool, default=True
        Append the other installed solvers, to be tried when one is undecided.

    Returns
    -------
    names : list of str
        Canonical (upper-case) names of installed solvers.

    Raises
    ------
    ValueError
        For a name that is not a storage solver (the message lists them).
    SolverError
        For a valid solver that is not installed.
    """
    if not isinstance(fallback, bool):
        raise TypeError(f"fallback must be True or False; got {fallback!r}.")
    available = set(cp.installed_solvers())
    installed = [s for s in SOLVERS if s == "IPM" or s in available]
    valid = ("auto", *SOLVERS)
    if not isinstance(solver, str) or solver.upper() not in {v.upper() for v in valid}:
        raise ValueError(
            f"solver must be one of {', '.join(map(repr, valid))} "
            f"(case-insensitive); got {solver!r}."
        )
    name = solver.upper()
    if name == "AUTO":
        if not installed:
            raise SolverError(
                "No storage solver is installed; install one of: "
                + ", ".join(_PIP_NAMES[s] for s in SOLVERS)
            )
        return installed if fallback else installed[:1]
    if name not in installed:
        raise SolverError(
            f"Solver {name} is not installed (pip install {_PIP_NAMES[name]}); "
            f"installed storage solvers: {', '.join(installed) or 'none'}."
        )
    if not fallback:
        return [name]
    return [name] + [s for s in installed if s != name]


@functools.cache
def _absorb_highs_banner():
    """Create one HiGHS solver with stdout closed, once per process.

    highspy prints a copyright banner to stdout the first time a solver is
    created in a process, whatever the options; a library must not print.
    File descriptor 1 is swapped for the duration, so a thread writing to
    stdout at that moment loses its output.
    """
    try:
        import highspy
    except ImportError:
        return
    if sys.stdout is not None:
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # stdout closed: nothing to protect
        highspy.Highs()
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def solve_program(program, name: str, options: dict) -> SolverRun:
    """Solve a :class:`~assoc_cvx.programs.StorageProgram` with one solver.

    Solver failures are caught and reported in the returned status.

    Parameters
    ----------
    program : StorageProgram
        The program; its variables hold the solution afterwards.
    name : str
        An installed cvxpy solver name.
    options : dict
        Keyword arguments for ``cvxpy.Problem.solve``.

    Returns
    -------
    run : SolverRun
        Status, timings and error message.

    Raises
    ------
    ValueError
        When the solver rejects the options (an unknown keyword or a value of
        the wrong type).
    """
    problem = program.problem
    if name == "HIGHS":
        _absorb_highs_banner()
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # cvxpy warns on inaccurate statuses; they are mapped to undecided.
            warnings.filterwarnings("ignore", "Solution may be inaccurate")
            if name == "IPM":
                problem.solve(method=IPM_METHOD, **options)
            else:
                problem.solve(solver=name, **options)
    except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
        wall = time.perf_counter() - t0
        return SolverRun("error", 0.0, wall, f"{type(exc).__name__}: {exc}")
    except TypeError as exc:
        raise ValueError(f"{name} rejected the options {options}: {exc}") from exc
    wall = time.perf_counter() - t0
    compile_time = float(getattr(problem, "compilation_time", None) or 0.0)
    solve_time = problem.solver_stats.solve_time if problem.solver_stats else None
    if solve_time is None:
        solve_time = max(wall - compile_time, 0.0)
    return SolverRun(problem.status, compile_time, float(solve_time))


#: Smallest eigenvalue ratio of a Gram matrix trusted for whitening (singular
#: values 1e-5 apart); below it the SVD is used.
_GRAM_MIN_RATIO = 1e-10


def _whitening(A):
    """Matrix M (d, r) such that ``A @ M`` has orthonormal columns.

    r is the numerical rank of ``A`` (n, d); the kept singular values are
    returned too. ``x -> M^T x`` is one-to-one on the row space of ``A``.
    """
    if A.shape[0] > 4 * A.shape[1]:
        # Many rows: the eigenvectors of the Gram matrix cost a fraction of an
        # SVD and are as accurate while its condition number is moderate.
        eig, V = np.linalg.eigh(A.T @ A)
        if eig[-1] > 0 and eig[0] > _GRAM_MIN_RATIO * eig[-1]:
            s = np.sqrt(eig[::-1])
            return V[:, ::-1] / s, s
    _, s, Vt = np.linalg.svd(A, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros((A.shape[1], 0)), s[:0]
    keep = s > s[0] * max(A.shape) * np.finfo(np.float64).eps
    return Vt[keep].T / s[keep], s[keep]


def _unit_rows(A):
    norms = np.linalg.norm(A, axis=-1)
    return A / np.where(norms > 0, norms, 1.0)[..., None], norms


#: Forster iterations towards radial isotropic position: at most this many,
#: stopping once the singular values of the unit rows agree to 1 %.
_RADIAL_ITERATIONS = 100


def _radial_isotropic(A):
    """Map M (d, r) such that the unit rows of ``A @ M`` are nearly isotropic.

    Alternates whitening and row normalisation (Forster's iteration). Both
    steps are one-to-one on the rows' span or positive row scalings, so they
    change no sign pattern a linear map can produce, and the limit does not
    depend on the units of single features or rows. When the iteration does
    not converge (no isotropic position exists, as when a subspace holds too
    many rows) it diverges; the first whitening step is returned then.
    """
    U, _ = _unit_rows(A)
    first, s = _whitening(U)
    M = first
    for _ in range(_RADIAL_ITERATIONS):
        if s.size == 0 or s[-1] >= 0.99 * s[0]:
            return M
        U, _ = _unit_rows(A @ M)
        step, s = _whitening(U)
        M = M @ step
    return first


#: Margins too close to zero for the float64 check are recomputed exactly;
#: beyond this many the verdict is left undecided.
_MAX_EXACT_CHECKS = 2000


def _exact_margin(d, W, x):
    """``d^T W x`` in exact rational arithmetic on the float64 entries."""
    Wx = [
        sum(Fraction(w) * Fraction(v) for w, v in zip(row, x, strict=True)) for row in W
    ]
    return sum(Fraction(a) * b for a, b in zip(d, Wx, strict=True))


class _Instance:
    """One storage instance in its two formulations, and the evidence checks.

    Plain: ``X`` and ``D`` divided by their root-mean-square row norms. The
    same W stores both, and margins differ by the factor ``scale``.

    Preconditioned: inputs mapped by ``Mx`` and difference vectors by ``Ny``
    (see :func:`_radial_isotropic`), then every row normalised. Storability
    is unchanged (a W' of the new instance gives ``W = Ny W' Mx^T``), but the
    geometry no longer depends on the units of single features or patterns,
    so a certificate bound on it is a meaningful test of "not storable".

    Every "stored" verdict is checked on the data as given (``X0``, ``D0``),
    on the very matrix returned (see :meth:`verified`).
    """

    def __init__(self, X, D):
        self.X0, self.D0 = X, D
        sx, sy = rms_row_norm(X), rms_row_norm(D)
        self.X, self.D = X / sx, D / sy
        self.scale = sx * sy
        self._pre = None

    def preconditioned(self):
        if self._pre is None:
            p, K, d_out = self.D.shape
            Mx = _radial_isotropic(self.X)
            Ny = _radial_isotropic(self.D.reshape(p * K, d_out))
            Xp, nx = _unit_rows(self.X @ Mx)
            Dp, nd = _unit_rows(self.D @ Ny)
            # A zero row stays zero in both formulations: any weight on it is
            # an exact certificate, so its scale is set to one.
            row_scale = nd * nx[:, None]
            row_scale = np.where(row_scale > 0, row_scale, 1.0)
            self._pre = (Mx, Ny, Xp, Dp, row_scale)
        return self._pre

    @functools.cached_property
    def zero_rows(self):
        """0/1 array (p, K) marking the rows that are exactly zero, or None."""
        zero = ~np.any(self.D0, axis=2) | ~np.any(self.X0, axis=1)[:, None]
        return zero.astype(float) if zero.any() else None

    def plain_bound(self, weights):
        """``||A^T weights||_F`` on the plain rows (weights sum to one)."""
        return float(np.linalg.norm(certificate_matrix(weights, self.X, self.D)))

    def certificate(self, weights):
        """Upper bounds on kappa*, plain and preconditioned, from weights >= 0."""
        G = certificate_matrix(weights, self.X, self.D)
        Mx, Ny, _, _, row_scale = self.preconditioned()
        bound = np.linalg.norm(Ny.T @ G @ Mx) / np.sum(weights * row_scale)
        return float(np.linalg.norm(G)), float(bound)

    def verified(self, W):
        """Check a solver's W on the data as given.

        Returns the smallest margin of ``W / ||W||_F`` (NaN without a usable
        W), the returned matrix ``W / ||W||_F / margin`` (smallest margin
        one), whether every margin of that matrix is proved positive: in
        float64 when it exceeds the rounding error bound of its computation,
        ``gamma * |d|^T |W| |x|``, otherwise in exact rational arithmetic on
        the float64 entries; and whether the float64 proof sufficed for all
        (a W that needs the exact one may not recall in float64 arithmetic).
        """
        if W is None or not np.all(np.isfinite(W)):
            return np.nan, None, False, False
        norm = np.linalg.norm(W)
        if not (np.isfinite(norm) and norm > 0):
            return np.nan, None, False, False
        W_unit = W / norm
        lower = float(margins(W_unit, self.X0, self.D0).min())
        if not lower > 0:
            return lower, None, False, False
        W_final = W_unit / lower
        if not np.all(np.isfinite(W_final)):
            return lower, None, False, False
        with np.errstate(over="ignore", invalid="ignore"):
            m = margins(W_final, self.X0, self.D0)
            size = np.einsum(
                "mkd,md->mk", np.abs(self.D0), np.abs(self.X0) @ np.abs(W_final).T
            )
        gamma = (self.X0.shape[1] + self.D0.shape[2] + 2) * np.finfo(np.float64).eps
        tiny = np.finfo(np.float64).tiny  # subnormal margins are not trusted
        doubtful = np.argwhere(~(m > np.maximum(gamma * size, tiny)))
        if len(doubtful) > _MAX_EXACT_CHECKS:
            return lower, None, False, False
        for mu, k in doubtful:
            if not _exact_margin(self.D0[mu, k], W_final, self.X0[mu]) > 0:
                return lower, None, False, False
        return lower, W_final, True, len(doubtful) == 0


@dataclass(frozen=True)
class _Evidence:
    verdict: str
    lower: float = np.nan
    upper: float = np.nan
    certificate: float = np.nan
    W: np.ndarray | None = None
    weights: np.ndarray | None = None
    optimal: bool = True
    robust: bool = True


def _stored_evidence(instance, formulation, W):
    """Map a solver's W back to the data as given and verify it there."""
    if formulation == "preconditioned" and W is not None:
        Mx, Ny, *_ = instance.preconditioned()
        W = Ny @ W @ Mx.T
    return instance.verified(W)


def _plain_weights(instance, formulation, lam):
    """A solver's duals as weights >= 0 on the plain rows, summing to one."""
    if lam is None or not np.all(np.isfinite(lam)):
        return None
    lam = np.clip(np.asarray(lam, dtype=np.float64), 0.0, None)
    lam = lam.reshape(instance.D.shape[:2])
    if formulation == "preconditioned":  # preconditioned rows -> plain rows
        lam = lam / instance.preconditioned()[4]
    total = lam.sum()
    if not total > 0:
        return None
    return lam / total


def _certificate_evidence(instance, formulation, lam):
    """Plain-row weights and the bounds they give, from a solver's duals.

    Weight on a zero row (a zero input, or a target among its own
    competitors) is replaced by the exact certificate: all of it on the zero
    rows, whose bound is zero.
    """
    weights = _plain_weights(instance, formulation, lam)
    if weights is None:
        return None, np.nan, np.nan
    zero = instance.zero_rows
    if zero is not None and np.any(weights[zero > 0] > 0):
        weights = zero / zero.sum()
    upper, certificate = instance.certificate(weights)
    return weights, upper, certificate


#: Polishing a certificate solves a dense least-squares problem with this many
#: entries at most.
_POLISH_MAX_ENTRIES = 2 * 10**7


def _polish(instance, weights):
    """Sharpen dual weights on their support by nonnegative least squares.

    Minimises ``||A_S^T lam||^2 + (sum(lam) - 1)^2`` over lam >= 0 on the rows
    S that carry weight, an active-set solve that lands on the exact support
    when interior-point weights converge slowly (a degenerate optimum).
    Returns plain-row weights, or None when S is too large (a system beyond
    ``_POLISH_MAX_ENTRIES``) or nothing came of it. The caller recomputes
    the bound from scratch.
    """
    flat = weights.ravel()
    support = np.flatnonzero(flat > 1e-6 * flat.max())
    _, K, d_out = instance.D.shape
    n = instance.X.shape[1] * d_out
    if support.size * (n + 1) > _POLISH_MAX_ENTRIES:
        return None
    mu, k = np.divmod(support, K)
    rows = (instance.D[mu, k][:, :, None] * instance.X[mu][:, None, :]).reshape(
        support.size, n
    )
    system = np.vstack([rows.T, np.ones(support.size)])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    try:
        lam, _ = scipy.optimize.nnls(system, rhs, maxiter=50 * support.size)
    except RuntimeError:  # iteration limit
        return None
    if not lam.sum() > 0:
        return None
    out = np.zeros_like(flat)
    out[support] = lam / lam.sum()
    return out.reshape(weights.shape)


def _polished(instance, evidence, tol):
    """``(weights, upper, certificate)``, polished when the cut is not met.

    The polished weights replace the given ones only when their bound,
    recomputed from scratch, is sharper.
    """
    weights, _, certificate = evidence
    if weights is not None and not certificate <= tol:
        polished = _polish(instance, weights)
        if polished is not None:
            found = _certificate_evidence(instance, "plain", polished)
            if found[2] < certificate:
                return found
    return evidence


def _sharpest_certificate(instance, formulation, lam, tol):
    """Certificate evidence from a solver's duals, polished when above ``tol``."""
    return _polished(instance, _certificate_evidence(instance, formulation, lam), tol)


def _evidence(instance, formulation, W, lam, tol):
    """Read the verdict off a solver's W and duals, checking everything in numpy.

    ``lower`` is in units of the data as given, ``upper`` in plain units.
    """
    lower, W_final, verified, robust = _stored_evidence(instance, formulation, W)
    if verified:
        weights = _plain_weights(instance, formulation, lam)
        upper = np.nan if weights is None else instance.plain_bound(weights)
        return _Evidence(
            "stored", lower, upper, np.nan, W_final, weights, robust=robust
        )
    weights, upper, certificate = _sharpest_certificate(instance, formulation, lam, tol)
    if certificate <= tol:
        return _Evidence("not_storable", lower, upper, certificate, None, weights)
    return _Evidence("undecided", lower, upper, certificate)


def _ipm_attempt(instance, formulation, options, tol, mode):
    """Run the structured solver on one formulation; return (run, evidence).

    Its iterates are checked as it goes: the first W whose margins are all
    proved positive on the data as given ends a ``"verdict"`` run, and the
    first dual weights whose preconditioned bound is within ``tol`` end it
    with "not storable" (a ``"max_margin"`` run goes on, to sharpen them).
    When a run ends with neither (iteration limit, a singular Newton
    system, a stall), the sharpest dual weights it offered are polished
    once; if that brings their bound within ``tol`` the verdict is "not
    storable" although the run's own status is not.
    """
    if formulation == "plain":
        X, D = instance.X, instance.D
    else:
        _, _, X, D, _ = instance.preconditioned()
    found = {}
    # Dual iterates are not polished: an NNLS over the rows they weigh takes
    # seconds at d = 20 (a minute at d = 40), the few more iterations that
    # bring the bound under the cut a fraction of that. The sharpest weights
    # are polished once, at the end of a run that found no certificate.

    def stop_stored(W):
        lower, W_final, verified, robust = _stored_evidence(instance, formulation, W)
        if verified:
            found["stored"] = _Evidence(
                "stored", lower, W=W_final, optimal=False, robust=robust
            )
        return verified

    def stop_certified(lam):
        weights, upper, certificate = _certificate_evidence(instance, formulation, lam)
        best = found.get("certificate", (None, np.nan, np.inf))[2]
        if certificate <= best:  # keep the sharpest certificate seen
            found["certificate"] = (weights, upper, certificate)
        return certificate <= tol

    result = solve_storage_ipm(
        X,
        D,
        stop_stored=stop_stored,
        stop_certified=stop_certified,
        max_margin=mode == "max_margin",
        **options,
    )
    weights, upper, certificate = found.get("certificate", (None, np.nan, np.nan))
    evidence = found.get("stored")
    if result.status == "optimal" and result.tau > 0:
        # Converged: the last W is the max-margin direction; prove it too.
        lower, W_final, verified, robust = _stored_evidence(
            instance, formulation, result.W
        )
        if verified and (robust or evidence is None or not evidence.robust):
            weights = _plain_weights(instance, formulation, result.weights)
            evidence = _Evidence(
                "stored", lower, W=W_final, weights=weights, robust=robust
            )
            if weights is not None:
                upper = instance.plain_bound(weights)
    if evidence is None:
        weights, upper, certificate = _polished(
            instance, (weights, upper, certificate), tol
        )
    if evidence is not None:
        evidence = dataclasses.replace(evidence, upper=upper, certificate=np.nan)
    elif certificate <= tol:
        evidence = _Evidence("not_storable", np.nan, upper, certificate, None, weights)
    else:
        evidence = _Evidence("undecided", np.nan, upper, certificate)
    message = f"{result.iterations} iterations"
    if evidence.verdict == "undecided":
        message += (
            f", certificate {evidence.certificate:.3g} (cut {tol:g}), "
            f"no W proved to store"
        )
    run = SolverRun(result.status, 0.0, result.solve_time, message)
    return run, evidence


def _attempt(instance, name, formulation, options, tol, mode, programs):
    """One solver on one formulation: the Attempt record and its evidence."""
    if name == "IPM":
        run, evidence = _ipm_attempt(instance, formulation, options, tol, mode)
        return Attempt(
            name,
            formulation,
            run.status,
            evidence.verdict,
            run.compile_time,
            run.solve_time,
            run.message,
        ), evidence
    key = (formulation, SOLVERS[name])
    if key not in programs:
        if formulation == "plain":
            Xf, Df = instance.X, instance.D
        else:
            _, _, Xf, Df, _ = instance.preconditioned()
        programs[key] = scale_free_program(Xf, Df, norm=SOLVERS[name])
    program = programs[key]
    run = solve_program(program, name, options)
    message = run.message
    if run.status == cp.OPTIMAL:
        evidence = _evidence(
            instance,
            formulation,
            program.W.value,
            program.margin_constraint.dual_value,
            tol,
        )
        if evidence.verdict == "undecided":
            message = (
                f"margin bounds [{evidence.lower:.3g}, {evidence.upper:.3g}], "
                f"certificate {evidence.certificate:.3g} > cut {tol:g}"
            )
    else:
        evidence = _Evidence("undecided")
        message = message or f"status {run.status!r} is not trusted"
    attempt = Attempt(
        name,
        formulation,
        run.status,
        evidence.verdict,
        run.compile_time,
        run.solve_time,
        message,
    )
    return attempt, evidence


def decide(
    X,
    D,
    *,
    solvers,
    constraints,
    certificate_tol=CERTIFICATE_TOL,
    solver_options=None,
    mode="max_margin",
) -> StorageResult:
    """Decide storage of the set with inputs ``X`` and difference tensor ``D``.

    The engine behind :func:`check_storage`, for validated input; it also
    serves rectangular W and issues no warning.

    Parameters
    ----------
    X : ndarray of shape (p, d_in)
        Inputs, validated.
    D : ndarray of shape (p, K, d_out)
        Difference vectors (see :func:`~assoc_cvx.programs.difference_tensor`).
    solvers : list of str
        Canonical solver names to try in order (see :func:`resolve_solvers`).
    constraints : {"coupled", "decoupled"}
        Recorded in the result.
    certificate_tol : float, default=1e-8
        Cut on the preconditioned certificate bound.
    solver_options : dict, default=None
        Keyword arguments by canonical solver name.
    mode : {"max_margin", "verdict"}, default="max_margin"
        See :func:`check_storage`.

    Returns
    -------
    result : StorageResult

    Raises
    ------
    InsufficientMemoryError
        When the structured solver would need more memory than is available.
    ValueError
        When a nonzero difference vector has its largest entry outside
        [1e-150, 1e150] (targets too close, or too far apart, for float64).
    """
    # Differences of rows in [MIN_ABS, MAX_ABS] may be smaller than MIN_ABS;
    # down to MIN_ABS**1.5 margins stay normal float64 numbers.
    low, high = MIN_ABS**1.5, MAX_ABS**1.5
    found = first_row_out_of_range(D, low, high)
    if found is not None:
        (mu, k), value = found
        raise ValueError(
            f"Target {mu} and its competitor {k} differ by a vector whose largest "
            f"entry is {value:.3g}, outside [{low:g}, {high:g}]: "
            "targets that close (or that far apart) leave the float64 range of "
            "margins. Merge or rescale them."
        )
    instance = _Instance(X, D)
    programs = {}
    attempts = []
    chosen = fragile = None
    for name in solvers:
        options = {
            **SOLVER_OPTIONS.get(name, {}),
            **(solver_options or {}).get(name, {}),
        }
        for formulation in ("plain", "preconditioned"):
            attempt, evidence = _attempt(
                instance, name, formulation, options, certificate_tol, mode, programs
            )
            attempts.append(attempt)
            latest = (attempt, evidence)
            if evidence.verdict == "undecided":
                logger.info("%s (%s) undecided: %s", name, formulation, attempt.message)
                continue
            if evidence.verdict == "stored" and not evidence.robust:
                # Proved only in exact arithmetic: float64 products with this W
                # may not recall. The preconditioned program may give a W that
                # needs no such proof; this one is kept in case it does not.
                fragile = fragile or (attempt, evidence)
                if formulation == "plain":
                    continue
            if evidence.verdict != "stored" and fragile is not None:
                break  # a proof of storage outweighs a float64 certificate
            chosen = (attempt, evidence)
            break
        if chosen is None and fragile is not None:
            chosen = fragile
        if chosen is not None:
            break
    last, evidence = chosen if chosen is not None else latest
    W = margin = support = None
    weights = None
    max_margin = (
        evidence.verdict == "stored"
        and evidence.optimal
        and last.formulation == "plain"
        and SOLVERS[last.solver] == "fro"
    )
    if evidence.verdict == "stored":
        margin, W = evidence.lower, evidence.W
        if max_margin:
            support = np.argwhere(margins(W, X, D) <= 1.0 + SUPPORT_RTOL)
            weights = evidence.weights
    elif evidence.verdict == "not_storable":
        weights = evidence.weights
    return StorageResult(
        stored={"stored": True, "not_storable": False}.get(evidence.verdict),
        status=evidence.verdict,
        W=W,
        max_margin=max_margin,
        support=support,
        margin=margin,
        margin_lower=evidence.lower,
        margin_upper=evidence.upper * instance.scale,
        certificate=evidence.certificate,
        dual_weights=weights,
        constraints=constraints,
        solver=last.solver,
        solver_status=last.solver_status,
        compile_time=sum(a.compile_time for a in attempts),
        solve_time=sum(a.solve_time for a in attempts),
        attempts=tuple(attempts),
    )


def check_storage(
    X,
    Y,
    *,
    competitors=None,
    solver: str = "auto",
    fallback: bool = True,
    certificate_tol: float = CERTIFICATE_TOL,
    solver_options: dict | None = None,
    mode: str = "max_margin",
    exact: bool = False,
    kappa: float = 0.0,
) -> StorageResult:
    r"""Decide whether a linear map can store every association exactly.

    Parameters
    ----------
    X : array-like of shape (p, d)
        Inputs, one per row; p >= 2.
    Y : array-like of shape (p, d)
        Targets; row mu is the target of input mu.
    competitors : array-like of shape (p, K, d), default=None
        None: the coupled constraint set (the competitors of input mu are the
        other targets). An array: the decoupled set, ``competitors[mu]`` being
        the private competitors of input mu (see :func:`make_competitors`).
    solver : {"auto", "IPM", "ECOS", "CLARABEL", "HIGHS", "SCS"}, default="auto"
        Solver of the scale-free program (case-insensitive). ``"IPM"`` is the
        package's structured interior-point solver (:mod:`assoc_cvx.ipm`),
        the others are reached through cvxpy. ``"auto"`` tries them in that
        order.
    fallback : bool, default=True
        When a solver leaves the verdict undecided (an error, an inaccurate
        status, or evidence that does not decide), try the other installed
        solvers before giving up.
    certificate_tol : float, default=1e-8
        "Not storable" needs dual weights whose bound on the best normalised
        margin of the preconditioned instance (see Notes) is at most this.
    solver_options : dict, default=None
        Extra keyword arguments per solver name, passed to
        ``cvxpy.Problem.solve``, e.g. ``{"ECOS": {"max_iters": 500}}``. For
        ``"IPM"``: ``max_iter`` (200), ``gap_tol`` (1e-10), ``n_threads``
        (BLAS threads, 1) and ``max_memory`` (bytes; default the memory
        available), see :func:`assoc_cvx.ipm.solve_storage_ipm`; they are
        checked even when the IPM is not run.
    mode : {"max_margin", "verdict"}, default="max_margin"
        ``"max_margin"``: when stored, ``W`` is the max-margin matrix.
        ``"verdict"``: the structured solver stops at its first iterate that
        is proved to store the set (about three times faster near capacity);
        ``W`` then stores the set but ``max_margin`` is False. The cvxpy
        solvers always solve to optimality.
    exact : bool, default=False
        Confirm a "not storable" verdict in exact rational arithmetic (see
        Notes); a verdict that cannot be confirmed becomes undecided. Only
        for d <= 6.
    kappa : float, default=0.0
        Required normalised margin, >= 0: with ``||W||_F = d`` every margin
        must be at least kappa, in standard deviations of a random
        competitor's score (see :mod:`assoc_cvx.margin` for the convention).
        kappa > 0 is decided by :func:`assoc_cvx.margin.decide_margin`: by
        the max-margin solve of the structured solver when it comes first,
        else by the cvxpy cone solvers (ECOS, CLARABEL, SCS), with no
        preconditioning; then ``W`` is returned at ``||W||_F = d`` (every
        margin at least kappa) and "not storable" needs a dual bound on the
        best normalised margin below ``kappa / d``.

    Returns
    -------
    result : StorageResult
        The verdict with its evidence (see :class:`StorageResult`).

    Raises
    ------
    ValueError
        Bad input: NaN or infinity, wrong dimensions, X and Y of different
        shapes, fewer than 2 patterns, competitors of the wrong shape, rows
        whose entries are below 1e-100 or above 1e100 in size, an unknown
        solver name or mode, options a solver rejects, ``exact=True`` with
        d > 6 or with kappa > 0, a negative or infinite kappa, kappa > 0 with
        HIGHS as the only solver.
    InsufficientMemoryError
        The structured solver would need more memory than is available (the
        message gives its estimate).
    TypeError
        Non-numeric, complex or sparse patterns; parameters of the wrong type.
    SolverError
        The requested solver is not installed.

    Warns
    -----
    SolverWarning
        When every solver tried left the verdict undecided, or when a solver
        named by ``solver`` did not decide and another one did.

    See Also
    --------
    LinearAssociativeMemory : the estimator that fits and uses W.
    find_capacity : the largest storable p of random instances.

    Notes
    -----
    W stores the set when every margin is positive,

    .. math:: (y_\mu - y_\nu)^\top W x_\mu > 0 \quad \forall \mu \ne \nu

    (with ``z_{mu k}`` in place of ``y_nu`` for the decoupled set). The verdict
    comes from the scale-free program

    .. math:: \kappa^* = \max_{\lVert W \rVert_F \le 1} \min_{\mu, \nu}
              (y_\mu - y_\nu)^\top W x_\mu ,

    whose dual is the distance of the origin from the convex hull of the
    constraint rows. Each verdict carries evidence checked in numpy, never
    the solver's word alone:

    - stored: every margin of the solver's W, recomputed in float64 on the
      data as given, is positive by more than the rounding error bound of
      its computation;
    - not storable: dual weights lambda >= 0 over the margin rows certify
      (Gordan's theorem) that the best normalised margin of the
      preconditioned instance is at most ``certificate_tol``;
    - anything else, including a status of ``optimal_inaccurate``, is
      undecided.

    Each solver first gets the *plain* program, on the data divided by their
    root-mean-square row norms. When that is undecided it gets the
    *preconditioned* program: inputs and difference vectors brought to
    radial isotropic position (Forster's iteration of whitening and row
    normalisation; one whitening step when that position does not exist).
    Neither change alters which sets can be stored, but the second makes the
    geometry independent of the units of single features or patterns: a
    storable set whose plain margin is tiny only because one input is 1e-8
    times the others, or one feature is in other units, is found storable
    there. When that too is undecided, the next installed solver is tried.
    Strictly, "not storable" certifies a preconditioned kappa* below
    ``certificate_tol``; at threshold instances storable sets have kappa*
    of 2.7e-5 or more (d <= 40), unstorable ones certificates of 1e-8 or
    less (see :data:`CERTIFICATE_TOL`).

    The returned W is the max-margin matrix (minimum Frobenius norm with every
    margin at least one), obtained as the scale-free optimum divided by
    kappa*: the two programs have the same solution up to that scale, and the
    scale-free one stays well conditioned near capacity where the other does
    not. When the verdict came from HIGHS (entrywise bound on W) or from the
    preconditioned program, W stores the set but is not of minimum norm;
    ``result.max_margin`` says which.

    Two limits of float64 remain. Directions of the inputs, or of the target
    differences, weaker than about ``max(p K, d) * eps`` (1e-14 or so)
    relative to the strongest are treated as absent by the preconditioning,
    so a set stored only thanks to them can be reported not storable. And a
    set whose best preconditioned margin is below ``certificate_tol`` (such
    as targets 1e-12 apart on a curve) is reported not storable too.

    ECOS and SCS catch Ctrl-C inside a solve and return a failure, which
    counts as undecided: press it again during the next solve to stop.

    Examples
    --------
    >>> from assoc_cvx import check_storage, make_associations
    >>> X, Y = make_associations(5, 4, random_state=0)
    >>> result = check_storage(X, Y)
    >>> result.stored
    True
    >>> bool(((X @ result.W.T @ Y.T).argmax(axis=1) == range(5)).all())
    True
    """
    X, Y = check_patterns(X, Y)
    p, d = X.shape
    if competitors is not None:
        competitors = check_competitors(competitors, p, d)
    names = resolve_solvers(solver, fallback=fallback)
    certificate_tol = check_positive(certificate_tol, "certificate_tol")
    check_option(mode, "mode", MODES)
    solver_options = _check_solver_options(solver_options)
    # Before D is built: a set too large for memory gets an error, not a crash.
    max_memory = solver_options.get("IPM", {}).get("max_memory")
    K = p - 1 if competitors is None else competitors.shape[1]
    check_memory(p, K, d, d, max_memory)
    if not isinstance(exact, bool):
        raise TypeError(f"exact must be True or False; got {exact!r}.")
    if exact and d > EXACT_MAX_DIM:
        raise ValueError(
            f"exact=True confirms certificates in rational arithmetic only for "
            f"d <= {EXACT_MAX_DIM}; got d={d}."
        )
    D = difference_tensor(Y, competitors)
    from assoc_cvx import margin  # deferred: margin imports this module

    kappa = margin.check_kappa(kappa)
    constraints = "coupled" if competitors is None else "decoupled"
    if kappa > 0:
        if exact:
            raise ValueError(
                "exact=True confirms zero-margin certificates only; got "
                f"kappa={kappa!r}."
            )
        names = margin.margin_solvers(names)  # the cvxpy cone solvers
        result = margin.decide_margin(
            X,
            D,
            solvers=names,
            constraints=constraints,
            certificate_tol=certificate_tol,
            solver_options=solver_options,
            kappa=kappa,
        )
    else:
        result = decide(
            X,
            D,
            solvers=names,
            constraints=constraints,
            certificate_tol=certificate_tol,
            solver_options=solver_options,
            mode=mode,
        )
    if exact and result.stored is False:
        result = _confirm_exactly(result, X, Y, competitors)
    tried = "; ".join(
        f"{a.solver} {a.formulation}: {a.solver_status} ({a.message})"
        for a in result.attempts
    )
    if result.stored is None:
        warnings.warn(
            f"Storage of {p} patterns in dimension {d} is undecided after {tried}.",
            SolverWarning,
            stacklevel=2,
        )
    elif solver.upper() != "AUTO" and result.solver != names[0]:
        warnings.warn(
            f"The requested solver {names[0]} did not decide ({tried}); the "
            f"verdict came from {result.solver}.",
            SolverWarning,
            stacklevel=2,
        )
    return result


def _confirm_exactly(result, X, Y, competitors):
    """Replace a float64 "not storable" by an exact one, or by undecided."""
    support = confirm_not_storable(X, Y, competitors, result.dual_weights)
    if support is not None:
        weights = np.zeros_like(result.dual_weights)
        for (mu, k), value in support:
            weights[mu, k] = float(value)
        return dataclasses.replace(
            result, dual_weights=weights, certificate=0.0, exact=True
        )
    warnings.warn(
        "The certificate of 'not storable' could not be confirmed in exact "
        "arithmetic; the verdict is undecided.",
        SolverWarning,
        stacklevel=3,
    )
    return dataclasses.replace(
        result, stored=None, status="undecided", dual_weights=None
    )


def _check_solver_options(solver_options):
    if solver_options is None:
        return {}
    if not isinstance(solver_options, dict):
        raise TypeError(
            "solver_options must be a dict from solver name to keyword arguments; "
            f"got {type(solver_options).__name__}."
        )
    out = {}
    for key, value in solver_options.items():
        name = str(key).upper()
        if name not in SOLVERS:
            raise ValueError(
                f"solver_options has an entry for {key!r}, which is not one of "
                f"{', '.join(map(repr, SOLVERS))}."
            )
        if not isinstance(value, dict):
            raise TypeError(
                f"solver_options[{key!r}] must be a dict of keyword arguments."
            )
        if name == "IPM":
            unknown = sorted(set(value) - set(IPM_OPTIONS))
            if unknown:
                raise ValueError(
                    f"solver_options[{key!r}] has {', '.join(map(repr, unknown))}; "
                    f"the IPM options are {', '.join(map(repr, IPM_OPTIONS))}."
                )
            check_ipm_options(**value)  # values too, even if IPM never runs
        reserved = sorted(set(value) & _RESERVED_OPTIONS)
        if reserved:
            raise ValueError(
                f"solver_options[{key!r}] sets {', '.join(reserved)}, which "
                "assoc_cvx controls; pass only the solver's own settings."
            )
        out[name] = value
    return out


#: Name of the structured solve method registered with cvxpy:
#: ``program.problem.solve(method=IPM_METHOD)``.
IPM_METHOD = "assoc_cvx_ipm"


def _solve_method(
    problem, *, mode="max_margin", certificate_tol=CERTIFICATE_TOL, **options
):
    """cvxpy solve method: the structured solver on a storage program.

    Decides storage like ``check_storage(..., solver="IPM", fallback=False)``
    and writes the answer back into the problem: for the scale-free program
    W, T, kappa and the dual weights of the margin rows (the certificate when
    kappa* = 0); for the max-margin program W and T, or status
    ``"infeasible"``. Undecided answers set status ``"solver_error"``.
    """
    program = storage_program_of(problem)
    if program is None or not (
        (program.kind == "scale_free" and program.norm == "fro")
        or program.kind == "max_margin"
    ):
        raise cp.error.SolverError(
            f"The {IPM_METHOD!r} method solves only the programs built by "
            "assoc_cvx.programs.scale_free_program(norm='fro') and "
            "max_margin_program; solve other problems with a cvxpy solver."
        )
    check_option(mode, "mode", MODES)
    result = decide(
        program.X,
        program.D,
        solvers=["IPM"],
        constraints="",
        certificate_tol=check_positive(certificate_tol, "certificate_tol"),
        solver_options=_check_solver_options({"IPM": options}),
        mode=mode,
    )
    if result.stored is None:
        raise cp.error.SolverError(
            "The structured solver left storage undecided: "
            + "; ".join(f"{a.formulation}: {a.message}" for a in result.attempts)
        )
    primal, dual = {}, {}
    p, K, _ = program.D.shape
    status, value = cp.OPTIMAL, None
    if result.stored:
        W = result.W
        if program.kind == "scale_free":
            W = W / np.linalg.norm(W)
            primal[program.kappa.id] = np.array(result.margin)
            if result.dual_weights is not None:
                duals = result.dual_weights.reshape(p * K)
                dual[program.margin_constraint.id] = duals
    elif program.kind == "scale_free":
        W = np.zeros(program.W.shape)
        primal[program.kappa.id] = np.array(0.0)
        dual[program.margin_constraint.id] = result.dual_weights.reshape(p * K)
    else:
        status, value = cp.INFEASIBLE, np.inf
    if status == cp.OPTIMAL:
        primal[program.W.id] = W
        primal[program.T.id] = W @ program.X.T
    problem.unpack(Solution(status, value, primal, dual, {}))
    _LAST_RESULTS[problem] = result
    return problem.value


def storage_result_of(problem):
    """The :class:`StorageResult` of the last structured solve of ``problem``.

    After ``problem.solve(method=IPM_METHOD)``: the verdict and its evidence
    behind the values written into the problem; None before.
    """
    return _LAST_RESULTS.get(problem)


_LAST_RESULTS = weakref.WeakKeyDictionary()

cp.Problem.register_solve(IPM_METHOD, _solve_method)
