"""Resumable sweeps of storage verdicts over a parameter grid.

A sweep visits every combination of dimension, constraint set, pattern
distribution, learning rule, margin and root seed, and, for each of its
random instances, either bisects on p for the exact critical p (the default)
or solves a fixed list of p. Every solve is written to a
:class:`~assoc_cvx.store.ResultStore` as soon as it returns; rerunning the same
sweep skips every solve that is stored.
"""

import concurrent.futures
import functools
import itertools
import json
import logging
import os
import platform
import socket
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from assoc_cvx._validation import check_int, check_option
from assoc_cvx.capacity import _GUESS_FACTOR, _is_settled, _next_p
from assoc_cvx.engine import CERTIFICATE_TOL, decide, resolve_solvers
from assoc_cvx.estimator import RULES, LinearAssociativeMemory
from assoc_cvx.margin import check_kappa, decide_margin, margin_solvers
from assoc_cvx.patterns import DISTRIBUTIONS, NestedPool
from assoc_cvx.programs import CONSTRAINT_SETS, difference_tensor, margins
from assoc_cvx.store import KEY_COLUMNS, ResultStore
from assoc_cvx.theory import asymptotic_capacity

__all__ = [
    "MONOTONE_RULES",
    "SWEEP_RULES",
    "SweepResult",
    "patterns_at_alpha",
    "run_sweep",
    "solve_one",
]

logger = logging.getLogger(__name__)

#: Learning rules a sweep accepts: those of :class:`LinearAssociativeMemory`.
SWEEP_RULES = RULES
#: Rules whose storability is monotone along nested instances, so that
#: bisection on p finds an exact critical p. Whether the Hebbian matrix of p
#: pairs stores them says nothing about p + 1 pairs (the matrix changes).
MONOTONE_RULES = ("max_margin",)
#: Solver column of rules that use no solver.
NO_SOLVER = "none"
#: Largest root seed (SQLite integers are signed 64-bit).
MAX_SEED = 2**63 - 1
#: Pip distribution of each solver, for the version recorded with a row.
_SOLVER_PACKAGES = {
    "ECOS": "ecos",
    "CLARABEL": "clarabel",
    "HIGHS": "highspy",
    "SCS": "scs",
    "OSQP": "osqp",
}


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`run_sweep`.

    Attributes
    ----------
    n_units : int
        Units of work in the sweep: instances to bisect, or (instance, p)
        solves on a fixed grid.
    n_units_done_before : int
        Units the store completed before this run (skipped).
    n_solved : int
        Solves computed and committed by this run.
    n_rows : int
        Rows of the sweep in the store at the end (its own and earlier ones).
    undecided : tuple of dict
        Key of every undecided solve of the sweep in the store.
    elapsed : float
        Wall-clock seconds of this run.
    """

    n_units: int
    n_units_done_before: int
    n_solved: int
    n_rows: int
    undecided: tuple
    elapsed: float


@dataclass
class _Unit:
    """An instance to bisect (``p is None``) or one (instance, p) solve."""

    cell: dict
    instance: int
    p: int | None
    solvers: tuple
    certificate_tol: float
    guess: int = 0
    p_max: int = 0
    verdicts: dict = field(default_factory=dict)

    def key(self, p):
        return (
            self.cell["n_features"],
            p,
            self.cell["constraints"],
            self.cell["distribution"],
            self.cell["rule"],
            self.cell["kappa"],
            self.cell["seed"],
            self.instance,
            self.cell["solver"],
        )

    def next_p(self):
        """The next p to solve, or None when the unit is complete."""
        if self.p is not None:
            return None if self.p in self.verdicts else self.p
        return _next_bisection_p(self.verdicts, self.guess, self.p_max)

    def task(self, p):
        return {
            **self.cell,
            "n_patterns": p,
            "instance": self.instance,
            "solvers": list(self.solvers),
            "certificate_tol": self.certificate_tol,
        }


def _next_bisection_p(verdicts, guess, p_max):
    """Next p of the bisection of :func:`~assoc_cvx.find_capacity`, or None.

    A function of the verdicts alone: the step of the upward search doubles
    with every p above the guess proved storable, which the verdicts record,
    so an interrupted bisection resumed from its stored verdicts tries the
    same p as one never interrupted.
    """
    if _is_settled(verdicts):
        return None
    lo = max([1] + [p for p, v in verdicts.items() if v is True])
    not_stored = [p for p, v in verdicts.items() if v is False]
    hi = min(not_stored) if not_stored else None
    ups = sum(1 for p, v in verdicts.items() if v is True and p > guess)
    step = max(1, guess // 8) * 2**ups
    return _next_p(lo, hi, verdicts, guess, step, p_max)


def patterns_at_alpha(alpha: float, n_features: int) -> int:
    r"""The number of patterns p at load alpha, solving p ln p = alpha d².

    Parameters
    ----------
    alpha : float
        Load, positive.
    n_features : int
        Dimension d >= 1.

    Returns
    -------
    p : int
        At least 2.

    Notes
    -----
    :math:`p = c / W_0(c)` with :math:`c = \alpha d^2` and :math:`W_0` the
    principal branch of the Lambert W function, rounded to the nearest integer.

    Examples
    --------
    >>> from assoc_cvx.sweep import patterns_at_alpha
    >>> patterns_at_alpha(0.5, 10)
    17
    """
    from scipy.special import lambertw

    d = check_int(n_features, "n_features")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number; got {alpha!r}.")
    c = float(alpha) * d * d
    p = c / lambertw(c).real if c > 0 else 1.0
    return max(2, round(p))


# -- solving one (instance, p) -------------------------------------------------


@functools.cache
def _versions():
    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    from assoc_cvx import __version__

    return {
        "package_version": __version__,
        "cvxpy_version": version("cvxpy"),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "host": socket.gethostname(),
    }


def _solver_version(name):
    if name is None or name == NO_SOLVER:
        return None
    dist = _SOLVER_PACKAGES.get(name.upper())
    if dist is None:  # a solver of assoc_cvx itself
        return _versions()["package_version"]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


_POOL_LOCK = threading.Lock()


@functools.lru_cache(maxsize=32)
def _pool(n_features, constraints, distribution, seed, instance):
    # Child ``instance`` of the root seed, exactly as find_capacity spawns it.
    child = np.random.SeedSequence(seed, spawn_key=(instance,))
    return NestedPool(n_features, constraints, distribution, child)


def _hebbian_row(X, Y, D):
    """Verdict and evidence of the Hebbian matrix ``W = sum_mu y_mu x_mu^T``.

    "stored" when every computed margin exceeds a bound on its rounding
    error (from forming W, ``W x`` and the product with the difference
    vector, each a sum of at most ``p + 2 d + 2`` terms, doubled), so
    that the exact Hebbian matrix stores the set; "not_storable" when some
    margin is below minus that bound; "undecided" otherwise.
    """
    W = Y.T @ X
    m = margins(W, X, D)
    n = X.shape[0] + X.shape[1] + Y.shape[1] + 2
    magnitude = np.abs(Y).T @ np.abs(X)  # bounds |W| entrywise, with its error
    bound = (
        2
        * n
        * np.finfo(float).eps
        * np.einsum("mkd,md->mk", np.abs(D), np.abs(X) @ magnitude.T)
    )
    norm = float(np.linalg.norm(W))
    if np.all(m > bound):
        verdict = "stored"
    elif np.any(m < -bound):
        verdict = "not_storable"
    else:
        verdict = "undecided"
    smallest = float(m.min()) / norm if norm > 0 else 0.0
    return {
        "verdict": verdict,
        "margin": smallest,
        "margin_lower": None,
        "margin_upper": None,
        "certificate": None,
        "max_margin": False,
        "decided_by": NO_SOLVER,
        "solver_status": "closed_form",
        "attempts": [],
        "compile_time": 0.0,
        "solve_time": 0.0,
    }


def _max_margin_row(X, D, task):
    if task["kappa"] > 0:
        result = decide_margin(
            X,
            D,
            solvers=margin_solvers(list(task["solvers"])),
            constraints=task["constraints"],
            kappa=task["kappa"],
            certificate_tol=task["certificate_tol"],
        )
    else:
        result = decide(
            X,
            D,
            solvers=list(task["solvers"]),
            constraints=task["constraints"],
            certificate_tol=task["certificate_tol"],
        )
    return {
        "verdict": result.status,
        "margin": result.margin,
        "margin_lower": result.margin_lower,
        "margin_upper": result.margin_upper,
        "certificate": result.certificate,
        "max_margin": result.max_margin,
        "decided_by": result.solver,
        "solver_status": result.solver_status,
        "attempts": [
            [a.solver, a.formulation, a.solver_status, a.verdict]
            for a in result.attempts
        ],
        "compile_time": result.compile_time,
        "solve_time": result.solve_time,
    }


def _estimator_row(X, Y, task):
    """Any other rule of the estimator (coupled constraint set only)."""
    model = LinearAssociativeMemory(rule=task["rule"], solver=task["solvers"][0])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdict is recorded instead
        model.fit(X, Y)
    verdict = {True: "stored", False: "not_storable"}.get(model.stored_, "undecided")
    result = model.storage_result_
    return {
        "verdict": verdict,
        "margin": model.margin_,
        "margin_lower": None if result is None else result.margin_lower,
        "margin_upper": None if result is None else result.margin_upper,
        "certificate": None if result is None else result.certificate,
        "max_margin": bool(result is not None and result.max_margin),
        "decided_by": model.solver_ or NO_SOLVER,
        "solver_status": "" if result is None else result.solver_status,
        "attempts": [],
        "compile_time": 0.0,
        "solve_time": time.perf_counter() - t0,
    }


def _limit_threads():
    """Limit BLAS to one thread in a worker process: workers share the cores."""
    global _THREAD_LIMIT
    _THREAD_LIMIT = threadpool_limits(limits=1)


_THREAD_LIMIT = None


def solve_one(task: dict) -> dict:
    """Solve one (instance, p) of a sweep and return its store row.

    Runs in a worker process (or thread, or the main process).

    Parameters
    ----------
    task : dict
        The key columns of the row (see :data:`assoc_cvx.store.KEY_COLUMNS`)
        plus ``solvers`` (canonical names, in order) and ``certificate_tol``.

    Returns
    -------
    row : dict
        Every column of a :class:`~assoc_cvx.store.ResultStore` row.
    """
    t0 = time.perf_counter()
    pool = _pool(
        task["n_features"],
        task["constraints"],
        task["distribution"],
        task["seed"],
        task["instance"],
    )
    with _POOL_LOCK:  # worker threads may grow one cached pool at once
        X, Y, Z = pool(task["n_patterns"])
    D = difference_tensor(Y, Z)
    rule = task["rule"]
    if rule == "max_margin":
        evidence = _max_margin_row(X, D, task)
    elif rule == "hebbian":
        evidence = _hebbian_row(X, Y, D)
    else:
        evidence = _estimator_row(X, Y, task)
    decided_by = evidence["decided_by"]
    return {
        **{k: task[k] for k in KEY_COLUMNS},
        **evidence,
        "wall_time": time.perf_counter() - t0,
        **_versions(),
        "solver_version": _solver_version(decided_by),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# -- executors ----------------------------------------------------------------


class _InlineExecutor:
    """Runs each task in the calling process as it is submitted."""

    workers = 1

    def submit(self, fn, arg):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(arg))
        except BaseException as exc:  # re-raised by future.result()
            if not isinstance(exc, Exception):
                raise
            future.set_exception(exc)
        return future

    @staticmethod
    def wait_any(futures):
        return [f for f in futures if f.done()]

    def close(self, *, failed=False):
        pass


class _LokyExecutor:
    """A private pool of joblib's worker processes (loky), one per job.

    Not joblib's shared reusable pool: changing its initializer would
    restart the pool under a running ``joblib.Parallel``. On Linux the
    workers are forked from this process, which has imported assoc_cvx
    already: a worker started afresh spends seconds importing cvxpy, scipy
    and scikit-learn before its first solve, a large part of a short sweep
    on two cores. Elsewhere (macOS, where forking after the Accelerate BLAS
    is unsafe; Windows, which cannot fork) they start afresh.
    """

    def __init__(self, workers, start_method=None):
        from joblib.externals.loky import ProcessPoolExecutor
        from joblib.externals.loky.backend.context import get_context

        if start_method is None:
            start_method = "fork" if sys.platform.startswith("linux") else "loky"
        with warnings.catch_warnings():
            # loky warns that fork is not its default; the workers only run
            # solve_one, which needs no thread of this process.
            warnings.filterwarnings("ignore", "`fork` start method", UserWarning)
            context = get_context(start_method)
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers, context=context, initializer=_limit_threads
        )

    def submit(self, fn, arg):
        return self._executor.submit(fn, arg)

    @staticmethod
    def wait_any(futures):
        done, _ = concurrent.futures.wait(
            futures, return_when=concurrent.futures.FIRST_COMPLETED
        )
        return list(done)

    def close(self, *, failed=False):
        # After a failure or an interrupt, running solves are not waited for.
        self._executor.shutdown(wait=not failed, kill_workers=failed)


class _DaskExecutor:
    """A Dask distributed cluster, reached through its scheduler."""

    def __init__(self, scheduler):
        try:
            from distributed import Client
        except ImportError:
            raise ImportError(
                "The Dask mode needs dask.distributed: pip install 'dask[distributed]'"
            ) from None
        if isinstance(scheduler, str):
            self._client = Client(scheduler, timeout=30, set_as_default=False)
            self._own = True
        else:  # a Client or a cluster object
            self._client = (
                scheduler
                if hasattr(scheduler, "submit")
                else Client(scheduler, set_as_default=False)
            )
            self._own = self._client is not scheduler
        from distributed import as_completed

        # Every submitted future, yielded as it completes.
        self._completed = as_completed(loop=self._client.loop)
        threads = self._client.nthreads()
        self.workers = max(1, sum(threads.values()))

    def submit(self, fn, arg):
        future = self._client.submit(fn, arg, pure=False)
        self._completed.add(future)
        return future

    def wait_any(self, futures):
        return [next(self._completed)]

    def close(self, *, failed=False):
        if self._own:
            self._client.close()


# -- the sweep ------------------------------------------------------------------


def _as_list(values, name, check):
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        values = [values]
    if len(values) == 0:
        raise ValueError(f"{name} must list at least one value; got none.")
    out = []
    for v in values:
        v = check(v)
        if v not in out:
            out.append(v)
    return out


def _check_kappa(kappa):
    return check_kappa(kappa, "kappas (--margins)")


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise TypeError(f"alphas must be positive numbers; got {alpha!r}.")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alphas must be positive finite numbers; got {alpha!r}.")
    return float(alpha)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seeds must be integers in [0, 2**63); got {seed!r}.")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seeds must be integers in [0, 2**63); got {seed}.")
    return int(seed)


def _units(store, cells, n_instances, p_values, alphas, solvers, tol, p_max):
    """Every unit of the sweep with the verdicts the store holds for it."""
    units = []
    for cell in cells:
        d = cell["n_features"]
        stored = store.verdicts(
            **{k: cell[k] for k in cell if k in KEY_COLUMNS},
        )
        by_instance = {}
        for key, verdict in stored.items():
            p, instance = key[1], key[7]
            by_instance.setdefault(instance, {})[p] = {
                "stored": True,
                "not_storable": False,
            }.get(verdict)
        cell_solvers = tuple(solvers) if cell["solver"] != NO_SOLVER else ()
        if p_values is None and alphas is None:
            top = 2 * d * d + 2 if p_max is None else p_max
            guess = int(np.clip(round(_GUESS_FACTOR * asymptotic_capacity(d)), 2, top))
            for i in range(n_instances):
                units.append(
                    _Unit(
                        cell,
                        i,
                        None,
                        cell_solvers,
                        tol,
                        guess=guess,
                        p_max=top,
                        verdicts=dict(by_instance.get(i, {})),
                    )
                )
            continue
        ps = list(p_values or [])
        ps += [patterns_at_alpha(a, d) for a in alphas or []]
        for p in sorted(set(ps)):
            for i in range(n_instances):
                known = by_instance.get(i, {})
                units.append(
                    _Unit(
                        cell,
                        i,
                        p,
                        cell_solvers,
                        tol,
                        verdicts={p: known[p]} if p in known else {},
                    )
                )
    return units


def run_sweep(
    store: ResultStore | str | os.PathLike,
    *,
    dims: Sequence[int],
    constraints: Sequence[str] = ("coupled",),
    distributions: Sequence[str] = ("gaussian",),
    rules: Sequence[str] = ("max_margin",),
    kappas: Sequence[float] = (0.0,),
    seeds: Sequence[int] = (0,),
    n_instances: int = 20,
    p_values: Sequence[int] | None = None,
    alphas: Sequence[float] | None = None,
    solver: str = "auto",
    certificate_tol: float = CERTIFICATE_TOL,
    p_max: int | None = None,
    n_jobs: int | None = 1,
    scheduler=None,
    retry_undecided: bool = False,
    progress: bool = False,
    callback: Callable[[dict], object] | None = None,
) -> SweepResult:
    r"""Run (or resume) a sweep, committing each solve to a result store.

    The grid is every combination of ``dims``, ``constraints``,
    ``distributions``, ``rules``, ``kappas`` and ``seeds``; each combination
    has ``n_instances`` random nested instances, instance i of root seed s
    being the one ``find_capacity(d, random_state=s, ...)`` draws as its
    instance i. Without ``p_values`` and ``alphas`` each instance is bisected
    on p for its exact critical p, as by :func:`~assoc_cvx.find_capacity`
    (one unit of work per instance); with them each instance is solved at
    those p (one unit per solve).

    Parameters
    ----------
    store : ResultStore, str or os.PathLike
        Where rows go, one per solve, committed as each solve returns. Solves
        stored already are not computed again, so a rerun resumes.
    dims : sequence of int
        Dimensions d >= 1.
    constraints : sequence of {"coupled", "decoupled"}, default=("coupled",)
    distributions : sequence of {"gaussian", "sphere"}, default=("gaussian",)
    rules : sequence of str, default=("max_margin",)
        Rules of :data:`SWEEP_RULES` (those of
        :class:`~assoc_cvx.LinearAssociativeMemory`). ``"max_margin"``:
        whether any W stores the set (the engine's verdict). ``"hebbian"``:
        whether the Hebbian W stores it (closed form, no solver). Bisection
        needs a rule of :data:`MONOTONE_RULES`; others need a p grid.
    kappas : sequence of float, default=(0.0,)
        Margins kappa >= 0 (see :mod:`assoc_cvx.margin`: every margin at
        least kappa at ``||W||_F = d``); kappa > 0 with rule "max_margin"
        only. Bisection stays exact: storage with a margin is nested in p.
    seeds : sequence of int, default=(0,)
        Root seeds in [0, 2**63).
    n_instances : int, default=20
        Instances per root seed.
    p_values : sequence of int, default=None
        Numbers of patterns p >= 2 to solve at, for every d.
    alphas : sequence of float, default=None
        Loads alpha > 0, each solved at the p of :func:`patterns_at_alpha`.
    solver : str, default="auto"
        First solver tried (as in :func:`~assoc_cvx.check_storage`); the
        other installed ones are the fallback. The row's ``solver`` column is
        the first solver of that order (``"none"`` for rules without one);
        ``decided_by`` is the solver whose answer gave the verdict.
    certificate_tol : float, default=1e-8
        Cut on the certificate bound for "not storable".
    p_max : int, default=None
        Largest p a bisection tries; default ``2 d**2 + 2``.
    n_jobs : int, default=1
        Local worker processes (joblib's loky pool); -1 for all cores. 1
        solves in this process.
    scheduler : str or distributed.Client, default=None
        Address of a Dask scheduler (or a client); work then goes to its
        workers instead, and ``n_jobs`` is ignored.
    retry_undecided : bool, default=False
        Solve again the stored solves that were undecided (a later solver
        version may decide them; an ECOS or SCS solve interrupted by Ctrl-C
        is recorded as undecided), replacing their rows. Decided rows are
        never replaced.
    progress : bool, default=False
        Show a progress bar with an ETA on stderr (off when not a terminal).
    callback : callable, default=None
        Called in this process with each row after it is committed.

    Returns
    -------
    result : SweepResult

    Raises
    ------
    ValueError, TypeError
        For a bad grid value (the message names the parameter, the valid
        values and the value received).
    StoreError
        When the store cannot be opened or written.

    Notes
    -----
    A unit that was running when the sweep stopped is resumed from its
    stored solves: the bisection's next p is a function of the verdicts found
    so far (:func:`_next_bisection_p`), so a resumed sweep ends with exactly
    the rows of one never interrupted. The solves of a rule are deterministic
    for a given solver and package versions, which the rows record; a rerun
    with other versions reuses the stored rows.

    Known shortcomings: ECOS and SCS catch Ctrl-C inside a solve and fail,
    so a solve running at an interrupt can be stored as undecided (a kill
    or a crash never stores anything half-done); ``retry_undecided=True``
    solves it again. The package version is not part of a row's key: a
    rerun after an upgrade reuses the stored rows (``package_version`` and
    ``solver_version`` say what computed each). Rules other than max-margin
    need a p grid; a margin kappa > 0 applies to max-margin only.

    The critical p satisfies :math:`p_c \ln p_c / d^2 \to 1/2` as d grows
    (arXiv 2605.10795).
    """
    start = time.perf_counter()
    dims = _as_list(dims, "dims", lambda v: check_int(v, "dims"))
    constraints = _as_list(
        constraints,
        "constraints",
        lambda v: check_option(v, "constraints", CONSTRAINT_SETS),
    )
    distributions = _as_list(
        distributions,
        "distributions",
        lambda v: check_option(v, "distributions", DISTRIBUTIONS),
    )
    rules = _as_list(rules, "rules", lambda v: check_option(v, "rules", SWEEP_RULES))
    kappas = _as_list(kappas, "kappas", _check_kappa)
    seeds = _as_list(seeds, "seeds", _check_seed)
    n_instances = check_int(n_instances, "n_instances")
    if p_values is not None:
        p_values = _as_list(
            p_values, "p_values", lambda v: check_int(v, "p_values", minimum=2)
        )
    if alphas is not None:
        alphas = _as_list(alphas, "alphas", _check_alpha)
    grid = p_values is not None or alphas is not None
    if not grid:
        bad = [r for r in rules if r not in MONOTONE_RULES]
        if bad:
            raise ValueError(
                f"rules {', '.join(map(repr, bad))} cannot be bisected on p "
                "(their storability is not monotone in p); give p values or "
                "alphas (p_values, alphas; --p, --alphas), or use only "
                f"{', '.join(map(repr, MONOTONE_RULES))}."
            )
    if any(k > 0 for k in kappas):
        bad = [r for r in rules if r != "max_margin"]
        if bad:
            raise ValueError(
                f"a margin kappa > 0 applies to rule 'max_margin' only; got rules "
                f"{', '.join(map(repr, bad))} with kappas {kappas}."
            )
    if "decoupled" in constraints:
        bad = [r for r in rules if r not in ("max_margin", "hebbian")]
        if bad:
            raise ValueError(
                f"rules {', '.join(map(repr, bad))} support the coupled "
                "constraint set only; got constraints including 'decoupled'."
            )
    if p_max is not None:
        p_max = check_int(p_max, "p_max", minimum=2)
    solvers = resolve_solvers(solver)
    if isinstance(certificate_tol, bool) or not isinstance(certificate_tol, Real):
        raise TypeError(f"certificate_tol must be a number; got {certificate_tol!r}.")
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0
    ):
        raise ValueError(f"n_jobs must be None or a nonzero integer; got {n_jobs!r}.")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got {type(callback).__name__}.")
    if not isinstance(retry_undecided, bool):
        raise TypeError(f"retry_undecided must be a bool; got {retry_undecided!r}.")

    cells = [
        {
            "n_features": d,
            "constraints": c,
            "distribution": dist,
            "rule": rule,
            "kappa": kappa,
            "seed": seed,
            "solver": solvers[0] if rule != "hebbian" else NO_SOLVER,
        }
        for d, c, dist, rule, kappa, seed in itertools.product(
            dims, constraints, distributions, rules, kappas, seeds
        )
    ]
    own_store = not isinstance(store, ResultStore)
    if own_store:
        store = ResultStore(store)
    executor = None
    failed = True
    try:
        units = _units(
            store,
            cells,
            n_instances,
            p_values,
            alphas,
            solvers,
            float(certificate_tol),
            p_max,
        )
        if retry_undecided:
            for unit in units:
                unit.verdicts = {
                    p: v for p, v in unit.verdicts.items() if v is not None
                }
        todo = deque(u for u in units if u.next_p() is not None)
        n_done_before = len(units) - len(todo)
        if scheduler is not None:
            executor = _DaskExecutor(scheduler)
        elif todo and effective_n_jobs(n_jobs) > 1:
            executor = _LokyExecutor(min(effective_n_jobs(n_jobs), len(todo)))
        else:
            executor = _InlineExecutor()
        inline = isinstance(executor, _InlineExecutor)
        with threadpool_limits(limits=1 if inline else None):
            n_solved = _drive(
                store,
                executor,
                todo,
                (len(units), n_done_before, "solve" if grid else "instance"),
                progress,
                callback,
                retry_undecided,
            )
        n_rows, undecided = _sweep_rows(store, units)
        failed = False
    finally:
        if executor is not None:
            executor.close(failed=failed)
        if own_store:
            store.close()
    return SweepResult(
        n_units=len(units),
        n_units_done_before=n_done_before,
        n_solved=n_solved,
        n_rows=n_rows,
        undecided=tuple(undecided),
        elapsed=time.perf_counter() - start,
    )


def _drive(store, executor, todo, counts, progress, callback, replace):
    """Keep the workers busy, commit each row as it arrives."""
    n_units, n_done, unit_name = counts
    # A few tasks queued per worker keep it busy while results travel back.
    in_flight_max = 1 if isinstance(executor, _InlineExecutor) else 2 * executor.workers
    pending = {}
    n_solved = 0
    bar = tqdm(
        total=n_units,
        initial=n_done,
        unit=f" {unit_name}",
        desc="sweep",
        disable=None if progress else True,
        file=sys.stderr,
    )
    try:
        with bar:
            while todo or pending:
                while todo and len(pending) < in_flight_max:
                    unit = todo.popleft()
                    p = unit.next_p()
                    pending[executor.submit(solve_one, unit.task(p))] = (unit, p)
                for future in executor.wait_any(pending):
                    unit, p = pending.pop(future)
                    row = future.result()
                    store.insert(row, replace_undecided=replace)
                    n_solved += 1
                    unit.verdicts[p] = {"stored": True, "not_storable": False}.get(
                        row["verdict"]
                    )
                    if row["verdict"] == "undecided":
                        logger.info("undecided: %s", unit.key(p))
                    if callback is not None:
                        callback(row)
                    if unit.next_p() is None:
                        bar.update(1)
                    else:
                        # Finish started units first: they free their memory
                        # and count in the ETA.
                        todo.appendleft(unit)
                    bar.set_postfix(solves=n_solved, refresh=False)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    return n_solved


def _sweep_rows(store, units):
    """Number of rows of the sweep in the store, and its undecided keys."""
    cells = {json.dumps(u.cell, sort_keys=True): u.cell for u in units}
    # A bisected instance owns its rows at every p, a grid unit one row.
    wanted = {(json.dumps(u.cell, sort_keys=True), u.instance, u.p) for u in units}
    n_rows = 0
    undecided = []
    for ckey, cell in cells.items():
        for key, verdict in sorted(
            store.verdicts(**{k: cell[k] for k in cell if k in KEY_COLUMNS}).items()
        ):
            if (ckey, key[7], None) not in wanted and (
                ckey,
                key[7],
                key[1],
            ) not in wanted:
                continue
            n_rows += 1
            if verdict == "undecided":
                undecided.append(dict(zip(KEY_COLUMNS, key, strict=True)))
    return n_rows, undecided
