"""Deciding storage: solver choice, status mapping and certificates."""

import functools
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import cvxpy as cp
import numpy as np

from assoc_cvx._validation import (
    MAX_ABS,
    MIN_ABS,
    check_competitors,
    check_patterns,
    check_positive,
    first_row_out_of_range,
    rms_row_norm,
)
from assoc_cvx.exceptions import SolverError, SolverWarning
from assoc_cvx.programs import (
    certificate_matrix,
    difference_tensor,
    margins,
    scale_free_program,
)

__all__ = [
    "CERTIFICATE_TOL",
    "SOLVERS",
    "SOLVER_OPTIONS",
    "Attempt",
    "SolverRun",
    "StorageResult",
    "check_storage",
    "decide",
    "resolve_solvers",
    "solve_program",
]

logger = logging.getLogger(__name__)

#: Solvers that can decide storage, in the order ``solver="auto"`` tries them,
#: with the norm ball each one is given (HiGHS solves linear programs only).
SOLVERS = {"ECOS": "fro", "CLARABEL": "fro", "HIGHS": "max", "SCS": "fro"}

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
_PIP_NAMES = {"ECOS": "ecos", "CLARABEL": "clarabel", "HIGHS": "highspy", "SCS": "scs"}
#: Options each solver gets unless the caller overrides them.
SOLVER_OPTIONS = {
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
    max_margin : bool
        Whether ``W`` is the max-margin matrix: the verdict came from a
        Frobenius-ball solver (ECOS, CLARABEL, SCS) on the plain formulation.
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
        there were no dual weights.
    dual_weights : ndarray of shape (p, K) or None
        When not storable, the certificate lambda >= 0 (summing to one) over
        the margin constraints, ``[mu, k]`` for competitor k of input mu.
    constraints : {"coupled", "decoupled"}
        Constraint set decided.
    solver : str or None
        The solver whose answer gave the verdict (the last one tried when
        undecided).
    solver_status : str
        Its status as cvxpy reported it.
    compile_time, solve_time : float
        Seconds, summed over every attempt.
    attempts : tuple of Attempt
        Every solver and formulation tried, in order.
    """

    stored: bool | None
    status: str
    W: np.ndarray | None
    max_margin: bool
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
    installed = [s for s in SOLVERS if s in cp.installed_solvers()]
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


def _whitening(A):
    """Matrix M (d, r) such that ``A @ M`` has orthonormal columns.

    r is the numerical rank of ``A`` (n, d); the kept singular values are
    returned too. ``x -> M^T x`` is one-to-one on the row space of ``A``.
    """
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
        one), and whether every margin of that matrix is proved positive:
        in float64 when it exceeds the rounding error bound of its
        computation, ``gamma * |d|^T |W| |x|``, otherwise in exact rational
        arithmetic on the float64 entries.
        """
        if W is None or not np.all(np.isfinite(W)):
            return np.nan, None, False
        norm = np.linalg.norm(W)
        if not (np.isfinite(norm) and norm > 0):
            return np.nan, None, False
        W_unit = W / norm
        lower = float(margins(W_unit, self.X0, self.D0).min())
        if not lower > 0:
            return lower, None, False
        W_final = W_unit / lower
        if not np.all(np.isfinite(W_final)):
            return lower, None, False
        with np.errstate(over="ignore", invalid="ignore"):
            m = margins(W_final, self.X0, self.D0)
            size = np.einsum(
                "mkd,md->mk", np.abs(self.D0), np.abs(self.X0) @ np.abs(W_final).T
            )
        gamma = (self.X0.shape[1] + self.D0.shape[2] + 2) * np.finfo(np.float64).eps
        tiny = np.finfo(np.float64).tiny  # subnormal margins are not trusted
        doubtful = np.argwhere(~(m > np.maximum(gamma * size, tiny)))
        if len(doubtful) > _MAX_EXACT_CHECKS:
            return lower, None, False
        for mu, k in doubtful:
            if not _exact_margin(self.D0[mu, k], W_final, self.X0[mu]) > 0:
                return lower, None, False
        return lower, W_final, True


@dataclass(frozen=True)
class _Evidence:
    verdict: str
    lower: float = np.nan
    upper: float = np.nan
    certificate: float = np.nan
    W: np.ndarray | None = None
    weights: np.ndarray | None = None


def _evidence(instance, formulation, program, tol):
    """Read the verdict off a solved program, checking everything in numpy.

    ``lower`` is in units of the data as given, ``upper`` in plain units.
    """
    W = program.W.value
    lam = program.margin_constraint.dual_value
    pre = formulation == "preconditioned"
    if pre and W is not None:
        Mx, Ny, *_ = instance.preconditioned()
        W = Ny @ W @ Mx.T
    lower, W_final, verified = instance.verified(W)
    weights = None
    upper = certificate = np.nan
    if lam is not None and np.all(np.isfinite(lam)):
        lam = np.clip(np.asarray(lam, dtype=np.float64), 0.0, None)
        lam = lam.reshape(instance.D.shape[:2])
        if pre:  # weights on preconditioned rows -> weights on plain rows
            lam = lam / instance.preconditioned()[4]
        total = lam.sum()
        if total > 0:
            weights = lam / total
            upper, certificate = instance.certificate(weights)
    if verified:
        verdict = "stored"
    elif certificate <= tol:
        verdict = "not_storable"
    else:
        verdict = "undecided"
    return _Evidence(verdict, lower, upper, certificate, W_final, weights)


def decide(
    X,
    D,
    *,
    solvers,
    constraints,
    certificate_tol=CERTIFICATE_TOL,
    solver_options=None,
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

    Returns
    -------
    result : StorageResult

    Raises
    ------
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
    total_compile = total_solve = 0.0
    for name in solvers:
        options = {
            **SOLVER_OPTIONS.get(name, {}),
            **(solver_options or {}).get(name, {}),
        }
        for formulation in ("plain", "preconditioned"):
            key = (formulation, SOLVERS[name])
            if key not in programs:
                if formulation == "plain":
                    Xf, Df = instance.X, instance.D
                else:
                    _, _, Xf, Df, _ = instance.preconditioned()
                programs[key] = scale_free_program(Xf, Df, norm=SOLVERS[name])
            run = solve_program(programs[key], name, options)
            total_compile += run.compile_time
            total_solve += run.solve_time
            message = run.message
            if run.status == cp.OPTIMAL:
                evidence = _evidence(
                    instance, formulation, programs[key], certificate_tol
                )
                if evidence.verdict == "undecided":
                    message = (
                        f"margin bounds [{evidence.lower:.3g}, {evidence.upper:.3g}]"
                        f", certificate {evidence.certificate:.3g} > cut "
                        f"{certificate_tol:g}"
                    )
            else:
                evidence = _Evidence("undecided")
                message = message or f"status {run.status!r} is not trusted"
            attempts.append(
                Attempt(
                    name,
                    formulation,
                    run.status,
                    evidence.verdict,
                    run.compile_time,
                    run.solve_time,
                    message,
                )
            )
            if evidence.verdict != "undecided":
                break
            logger.info("%s (%s) undecided: %s", name, formulation, message)
        if evidence.verdict != "undecided":
            break
    last = attempts[-1]
    W = margin = None
    weights = None
    if evidence.verdict == "stored":
        margin, W = evidence.lower, evidence.W
    elif evidence.verdict == "not_storable":
        weights = evidence.weights
    return StorageResult(
        stored={"stored": True, "not_storable": False}.get(evidence.verdict),
        status=evidence.verdict,
        W=W,
        max_margin=(
            evidence.verdict == "stored"
            and last.formulation == "plain"
            and SOLVERS[last.solver] == "fro"
        ),
        margin=margin,
        margin_lower=evidence.lower,
        margin_upper=evidence.upper * instance.scale,
        certificate=evidence.certificate,
        dual_weights=weights,
        constraints=constraints,
        solver=last.solver,
        solver_status=last.solver_status,
        compile_time=total_compile,
        solve_time=total_solve,
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
    solver : {"auto", "ECOS", "CLARABEL", "HIGHS", "SCS"}, default="auto"
        Solver of the scale-free program (case-insensitive). ``"auto"`` tries
        the installed ones in that order.
    fallback : bool, default=True
        When a solver leaves the verdict undecided (an error, an inaccurate
        status, or evidence that does not decide), try the other installed
        solvers before giving up.
    certificate_tol : float, default=1e-8
        "Not storable" needs dual weights whose bound on the best normalised
        margin of the preconditioned instance (see Notes) is at most this.
    solver_options : dict, default=None
        Extra keyword arguments per solver name, passed to
        ``cvxpy.Problem.solve``, e.g. ``{"ECOS": {"max_iters": 500}}``.
    kappa : float, default=0.0
        Required normalised margin, >= 0: with ``||W||_F = d`` every margin
        must be at least kappa, in standard deviations of a random
        competitor's score (see :mod:`assoc_cvx.margin` for the convention).
        kappa > 0 is decided by :func:`assoc_cvx.margin.decide_margin` with
        the Frobenius-ball solvers (ECOS, CLARABEL, SCS) and no
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
        solver name, options a solver rejects, a negative or infinite kappa,
        kappa > 0 with HIGHS as the only solver.
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
    D = difference_tensor(Y, competitors)
    from assoc_cvx import margin  # deferred: margin imports this module

    kappa = margin.check_kappa(kappa)
    result = (margin.decide_margin if kappa > 0 else decide)(
        X,
        D,
        solvers=margin.margin_solvers(names) if kappa > 0 else names,
        constraints="coupled" if competitors is None else "decoupled",
        certificate_tol=certificate_tol,
        solver_options=_check_solver_options(solver_options),
        **({"kappa": kappa} if kappa > 0 else {}),
    )
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
        reserved = sorted(set(value) & _RESERVED_OPTIONS)
        if reserved:
            raise ValueError(
                f"solver_options[{key!r}] sets {', '.join(reserved)}, which "
                "assoc_cvx controls; pass only the solver's own settings."
            )
        out[name] = value
    return out
