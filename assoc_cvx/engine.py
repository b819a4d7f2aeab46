"""Deciding storage: solver choice, status mapping and certificates."""

import functools
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from assoc_cvx._validation import check_competitors, check_patterns
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

#: Default cut on the certificate bound of the best normalised margin, in units
#: of data rescaled to unit root-mean-square row norm. At threshold instances
#: (d <= 40) storable ones have kappa* >= 2.7e-5, while unstorable ones give
#: bounds of 1e-13 to 1e-15 with ECOS and HiGHS and 1e-9 to 4e-9 with Clarabel
#: at its default tolerances (tighter ones make it end "inaccurate").
CERTIFICATE_TOL = 1e-8

_PIP_NAMES = {"ECOS": "ecos", "CLARABEL": "clarabel", "HIGHS": "highspy", "SCS": "scs"}
#: Options each solver gets unless the caller overrides them.
SOLVER_OPTIONS = {
    "ECOS": {"max_iters": 200},
    "HIGHS": {"highs_options": {"output_flag": False}},
    # SCS's default accuracy (1e-4) leaves certificates far above the cut.
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9},
}


@dataclass(frozen=True)
class Attempt:
    """One solver's try at an instance.

    Attributes
    ----------
    solver : str
        Solver name.
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
        float64). False: a certificate shows no W stores them. None: undecided.
    status : {"stored", "not_storable", "undecided"}
        The same verdict as a string.
    W : ndarray of shape (d, d) or None
        When stored, a matrix whose smallest recomputed margin
        ``(y_mu - y_nu)^T W x_mu`` is exactly one. From ECOS, CLARABEL or SCS
        (Frobenius ball) it is the max-margin matrix, of smallest Frobenius
        norm, to solver accuracy; from HIGHS (entrywise bound, a linear
        program) it stores the set but is not of smallest norm.
    margin : float or None
        When stored, the smallest margin of ``W / ||W||_F``, recomputed in
        float64: the best normalised margin kappa* to solver accuracy, or
        only a lower bound on it when the verdict came from HIGHS.
    margin_lower, margin_upper : float
        Bounds on kappa* from the evidence: the recomputed margin of the
        solver's W (lower) and the certificate's ``||A^T lambda|| / sum lambda``
        (upper). NaN where the solver gave nothing to compute them from.
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
        Every solver tried, in order.
    """

    stored: bool | None
    status: str
    W: np.ndarray | None
    margin: float | None
    margin_lower: float
    margin_upper: float
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


def resolve_solvers(solver, *, fallback=True):
    """Return the solver names to try, in order.

    Parameters
    ----------
    solver : str
        ``"auto"`` or a name in :data:`SOLVERS` (case-insensitive).
    fallback : bool, default=True
        Append the other installed solvers, to be tried when one is undecided.

    Raises
    ------
    ValueError
        For a name that is not a storage solver (the message lists them).
    SolverError
        For a valid solver that is not installed.
    """
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


def _rms_norm(A):
    scale = float(np.sqrt(np.mean(np.sum(A * A, axis=-1))))
    return scale if scale > 0 else 1.0


@functools.cache
def _absorb_highs_banner():
    """Create one HiGHS solver with stdout closed, once per process.

    highspy prints a copyright banner to stdout the first time a solver is
    created in a process, whatever the options; a library must not print.
    """
    try:
        import highspy
    except ImportError:
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def solve_program(program, name, options):
    """Solve a :class:`StorageProgram` with one solver, catching its failures.

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
    status : str
        cvxpy's status, or ``"error"`` when the solver raised.
    compile_time, solve_time : float
        Seconds spent by cvxpy compiling and by the solver.
    message : str
        The error, or an empty string.
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
        return "error", 0.0, wall, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    compile_time = float(getattr(problem, "compilation_time", None) or 0.0)
    solve_time = problem.solver_stats.solve_time if problem.solver_stats else None
    if solve_time is None:
        solve_time = max(wall - compile_time, 0.0)
    return problem.status, compile_time, float(solve_time), ""


def _evidence(program, X, D, tol):
    """Bounds on kappa* (scaled units) from the primal W and the dual weights."""
    lower = upper = np.nan
    W = program.W.value
    W_unit = None
    if W is not None and np.all(np.isfinite(W)):
        norm = np.linalg.norm(W)
        if norm > 0:
            W_unit = W / norm
            lower = float(margins(W_unit, X, D).min())
    lam = program.margin_constraint.dual_value
    weights = None
    if lam is not None and np.all(np.isfinite(lam)):
        lam = np.clip(np.asarray(lam, dtype=np.float64), 0.0, None)
        total = lam.sum()
        if total > 0:
            weights = (lam / total).reshape(D.shape[:2])
            upper = float(np.linalg.norm(certificate_matrix(weights, X, D)))
    if lower > 0:
        return "stored", lower, upper, W_unit, weights
    if upper <= tol:
        return "not_storable", lower, upper, W_unit, weights
    return "undecided", lower, upper, W_unit, weights


def decide(
    X,
    D,
    *,
    solvers,
    constraints,
    certificate_tol=CERTIFICATE_TOL,
    solver_options=None,
):
    """Decide storage of the set with inputs ``X`` and difference tensor ``D``.

    Works for rectangular W (``X`` of shape (p, d_in), ``D`` of shape
    (p, K, d_out)); inputs are assumed validated. See :func:`check_storage`.
    """
    sx, sy = _rms_norm(X), _rms_norm(D)
    Xs, Ds = X / sx, D / sy
    scale = sx * sy
    programs = {}
    attempts = []
    total_compile = total_solve = 0.0
    last = None
    for name in solvers:
        norm = SOLVERS[name]
        if norm not in programs:
            programs[norm] = scale_free_program(Xs, Ds, norm=norm)
        program = programs[norm]
        options = {
            **SOLVER_OPTIONS.get(name, {}),
            **(solver_options or {}).get(name, {}),
        }
        status, t_compile, t_solve, message = solve_program(program, name, options)
        total_compile += t_compile
        total_solve += t_solve
        if status == cp.OPTIMAL:
            verdict, lower, upper, W_unit, weights = _evidence(
                program, Xs, Ds, certificate_tol
            )
            if verdict == "undecided":
                message = (
                    f"margin bounds [{lower:.3g}, {upper:.3g}] do not decide "
                    f"(certificate cut {certificate_tol:g})"
                )
        else:
            verdict, lower, upper, W_unit, weights = (
                "undecided",
                np.nan,
                np.nan,
                None,
                None,
            )
            message = message or f"status {status!r} is not trusted"
        attempts.append(Attempt(name, status, verdict, t_compile, t_solve, message))
        last = (name, status, verdict, lower, upper, W_unit, weights)
        if verdict != "undecided":
            break
        logger.info("%s undecided on a (%d, %d) instance: %s", name, *X.shape, message)
    name, status, verdict, lower, upper, W_unit, weights = last
    W = margin = None
    if verdict == "stored":
        margin = lower * scale
        W = W_unit / margin
    else:
        W_unit = None
    if verdict != "not_storable":
        weights = None
    return StorageResult(
        stored={"stored": True, "not_storable": False}.get(verdict),
        status=verdict,
        W=W,
        margin=margin,
        margin_lower=lower * scale,
        margin_upper=upper * scale,
        dual_weights=weights,
        constraints=constraints,
        solver=name,
        solver_status=status,
        compile_time=total_compile,
        solve_time=total_solve,
        attempts=tuple(attempts),
    )


def check_storage(
    X,
    Y,
    *,
    competitors=None,
    solver="auto",
    fallback=True,
    certificate_tol=CERTIFICATE_TOL,
    solver_options=None,
):
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
        margin is at most this, in units of data rescaled to unit
        root-mean-square row norm.
    solver_options : dict, default=None
        Extra keyword arguments per solver name, passed to
        ``cvxpy.Problem.solve``, e.g. ``{"ECOS": {"max_iters": 500}}``.

    Returns
    -------
    result : StorageResult
        The verdict with its evidence (see :class:`StorageResult`).

    Raises
    ------
    ValueError
        Bad input: NaN or infinity, wrong dimensions, X and Y of different
        shapes, fewer than 2 patterns, competitors of the wrong shape, an
        unknown solver name.
    SolverError
        The requested solver is not installed.

    Warns
    -----
    SolverWarning
        When every solver tried left the verdict undecided.

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

    - stored: the solver's W, rescaled to unit norm, has every margin
      recomputed in float64 positive;
    - not storable: the dual weights lambda (nonnegative, summing to one) give
      ``||A^T lambda||_F <= certificate_tol``, an upper bound on kappa*
      (Gordan's theorem). Strictly this certifies kappa* <= certificate_tol:
      a set stored only with a smaller normalised margin is reported as not
      storable;
    - anything else, including a status of ``optimal_inaccurate``, is
      undecided and the next solver is tried.

    The returned W is the max-margin matrix (minimum Frobenius norm with every
    margin at least one), obtained as the scale-free optimum divided by
    kappa*: the two programs have the same solution up to that scale, and the
    scale-free one stays well conditioned near capacity where the other does
    not. The problem is solved after rescaling X and Y to unit
    root-mean-square row norm, so the verdict does not depend on their scale.

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
    if not (isinstance(certificate_tol, int | float) and certificate_tol > 0):
        raise ValueError(
            f"certificate_tol must be a positive number; got {certificate_tol!r}."
        )
    D = difference_tensor(Y, competitors)
    result = decide(
        X,
        D,
        solvers=names,
        constraints="coupled" if competitors is None else "decoupled",
        certificate_tol=float(certificate_tol),
        solver_options=_check_solver_options(solver_options),
    )
    if result.stored is None:
        tried = "; ".join(
            f"{a.solver}: {a.solver_status} ({a.message})" for a in result.attempts
        )
        warnings.warn(
            f"Storage of {p} patterns in dimension {d} is undecided after {tried}.",
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
        out[name] = value
    return out
