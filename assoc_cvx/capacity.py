"""Capacity of random instances: exact critical p by bisection on nested pools."""

import itertools
import json
import logging
import math
import os
import re
import stat
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy.stats import quantile_test
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from assoc_cvx._validation import (
    check_bool,
    check_int,
    check_option,
    check_positive,
)
from assoc_cvx.engine import CERTIFICATE_TOL, decide, resolve_solvers
from assoc_cvx.exceptions import CapacityWarning, CheckpointWarning, SolverWarning
from assoc_cvx.ipm import check_memory
from assoc_cvx.margin import (
    _check_retrieval,
    check_kappa,
    decide_margin,
    margin_solvers,
)
from assoc_cvx.patterns import DISTRIBUTIONS, NestedPool, as_generator
from assoc_cvx.programs import CONSTRAINT_SETS, difference_tensor
from assoc_cvx.rules import LEARNING_RULES, check_rule_params, fit_rule, recalled
from assoc_cvx.theory import asymptotic_capacity, capacity_alpha, listwise_alpha

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CAPACITY_RULES", "CapacityResult", "InstanceCapacity", "find_capacity"]

logger = logging.getLogger(__name__)

#: First guess of the critical p, as a multiple of the asymptotic capacity
#: (the measured ratio is about 1.7 at d = 10 and d = 20).
_GUESS_FACTOR = 1.7
#: Undecided verdicts tolerated in one bracket before an instance is given up.
_MAX_UNDECIDED = 3
#: A key of a checkpoint's verdicts: the decimal digits of p.
_P_KEY = re.compile(r"[0-9]+")
#: Rules whose capacity :func:`find_capacity` measures: the exact max-margin
#: verdict, and the learning rules of :mod:`assoc_cvx.rules` (lower bounds).
CAPACITY_RULES = ("max_margin", *LEARNING_RULES)


@dataclass(frozen=True)
class InstanceCapacity:
    """The critical p of one nested instance.

    Attributes
    ----------
    index : int
        Position of the instance in the run.
    critical_p : int or None
        Largest p whose instance is storable, when the verdicts at it and at
        p + 1 were both decided; None otherwise.
    lower : int
        Largest p proved storable (1 if none; a single pattern is always stored).
    upper : int or None
        Smallest p proved not storable; None if none was found below ``p_max``.
    verdicts : dict of int to bool or None
        Every verdict computed, by p.
    solve_time : float
        Seconds spent in compilation and solvers during this run (0 for an
        instance taken whole from a checkpoint).
    """

    index: int
    critical_p: int | None
    lower: int
    upper: int | None
    verdicts: dict
    solve_time: float


@dataclass(frozen=True)
class CapacityResult:
    """Outcome of :func:`find_capacity`.

    Attributes
    ----------
    n_features : int
        Dimension d.
    constraints : {"coupled", "decoupled"}
        Constraint set.
    distribution : {"gaussian", "sphere"}
        Pattern distribution.
    entropy : int
        Root seed of the run: ``find_capacity(..., random_state=entropy)``
        redraws the same instances.
    instances : tuple of InstanceCapacity
        Per-instance outcomes, in instance order.
    capacity : float
        Median critical p over the instances decided exactly (NaN if none).
    interval : tuple of float
        Distribution-free confidence interval of the median (order statistics
        of the critical p). Both ends are NaN when there are too few decided
        instances for that confidence (fewer than 6 at 95%).
    confidence : float
        Confidence level of ``interval``.
    alpha : float
        ``capacity * log(capacity) / d**2``, which tends to 1/2 as d grows.
    asymptote : float
        Large-d prediction, the p solving ``p log p / d**2 = 1/2``.
    elapsed : float
        Wall-clock seconds of the run.
    solver : str
        Solver requested: ``"auto"`` or an upper-case name in :data:`SOLVERS`.
    rule : str
        ``"max_margin"`` (exact verdicts) or a learning rule, whose critical
        p is only a lower bound on the instance's (see :func:`find_capacity`).
    recall : float
        Fraction of associations a learning rule had to recall (1.0 for
        ``"max_margin"``).
    kappa : float
        Required normalised margin (0: plain storage).
    retrieval : {"top1", "listwise"}
        Retrieval criterion.
    r : float or None
        Tail fraction of the listwise criterion.
    """

    n_features: int
    constraints: str
    distribution: str
    entropy: int
    instances: tuple
    capacity: float
    interval: tuple
    confidence: float
    alpha: float
    asymptote: float
    elapsed: float
    solver: str = "auto"
    rule: str = "max_margin"
    recall: float = 1.0
    kappa: float = 0.0
    retrieval: str = "top1"
    r: float | None = None
    _curve: tuple = field(default=(), repr=False)

    def __repr__(self) -> str:
        lo, hi = self.interval
        return (
            f"CapacityResult(capacity={self.capacity:g}, "
            f"interval=({lo:g}, {hi:g}), n_instances={len(self.instances)}, "
            f"n_undecided={self.n_undecided}, constraints={self.constraints!r}, "
            f"d={self.n_features})"
        )

    @property
    def critical_p(self) -> np.ndarray:
        """ndarray of shape (n_instances,): exact critical p, NaN if undecided."""
        return np.array(
            [np.nan if r.critical_p is None else r.critical_p for r in self.instances]
        )

    @property
    def n_undecided(self) -> int:
        """Number of instances whose critical p is not known exactly."""
        return int(sum(r.critical_p is None for r in self.instances))

    @property
    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Fraction of instances storable at each p, as (p, fraction) arrays.

        Only instances decided exactly count; an instance is storable at p
        when its critical p is at least p.
        """
        p, frac = self._curve
        return np.asarray(p), np.asarray(frac)

    def to_frame(self) -> "pd.DataFrame":
        """Per-instance table as a :class:`pandas.DataFrame`.

        Columns: instance, critical_p, lower, upper, n_solves, solve_time.
        """
        import pandas as pd

        return pd.DataFrame(
            {
                "instance": [r.index for r in self.instances],
                "critical_p": pd.array(
                    [r.critical_p for r in self.instances], dtype="Int64"
                ),
                "lower": [r.lower for r in self.instances],
                "upper": pd.array([r.upper for r in self.instances], dtype="Int64"),
                "n_solves": [len(r.verdicts) for r in self.instances],
                "solve_time": [r.solve_time for r in self.instances],
            }
        )

    def curve_frame(self) -> "pd.DataFrame":
        """The fraction-storable curve: a DataFrame of p, alpha and fraction."""
        import pandas as pd

        p, frac = self.curve
        return pd.DataFrame(
            {"p": p, "alpha": capacity_alpha(p, self.n_features), "fraction": frac}
        )

    def summary(self) -> dict:
        """The headline numbers as a dict of plain Python values."""
        return {
            "n_features": self.n_features,
            "constraints": self.constraints,
            "distribution": self.distribution,
            "n_instances": len(self.instances),
            "n_undecided": self.n_undecided,
            "capacity": _plain(self.capacity),
            "interval": [_plain(v) for v in self.interval],
            "confidence": self.confidence,
            "alpha": _plain(self.alpha),
            "asymptote": self.asymptote,
            "asymptote_alpha": 0.5,
            "entropy": self.entropy,
            "solver": self.solver,
            "rule": self.rule,
            "recall": self.recall,
            "elapsed": self.elapsed,
            "kappa": self.kappa,
            "retrieval": self.retrieval,
            "r": self.r,
        }

    def to_dict(self) -> dict:
        """Everything, JSON-serialisable: summary, instances and curve."""
        p, frac = self.curve
        return {
            **self.summary(),
            "instances": [
                {**asdict(r), "verdicts": {str(k): v for k, v in r.verdicts.items()}}
                for r in self.instances
            ],
            "curve": {"p": p.tolist(), "fraction": frac.tolist()},
        }

    def instance(
        self, index: int, n_patterns: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Regenerate the patterns of instance ``index`` at ``n_patterns``.

        Parameters
        ----------
        index : int
            Instance, in ``range(len(self.instances))``.
        n_patterns : int
            Number of patterns p >= 2.

        Returns
        -------
        X, Y : ndarray of shape (n_patterns, n_features)
        Z : ndarray of shape (n_patterns, n_patterns - 1, n_features) or None
            Competitors (decoupled runs only).
        """
        n = len(self.instances)
        index = check_int(index, "index", minimum=0)
        if index >= n:
            raise ValueError(
                f"index must be an instance of this run, in [0, {n}); got {index}."
            )
        n_patterns = check_int(n_patterns, "n_patterns", minimum=2)
        seed = _instance_seeds(self.entropy, n)[index]
        pool = NestedPool(self.n_features, self.constraints, self.distribution, seed)
        return pool(n_patterns)


def _plain(x):
    x = float(x)
    return None if np.isnan(x) else x


def _instance_seeds(entropy, n_instances):
    return np.random.SeedSequence(entropy).spawn(n_instances)


def _next_p(lo, hi, verdicts, guess, step, p_max):
    """Next p to solve given the bracket, or None when nothing is left to try.

    ``lo`` is proved storable and ``hi`` (or None) proved not storable. An
    undecided p inside the bracket acts as a provisional upper end: the
    points below it are settled first, then at most ``_MAX_UNDECIDED``
    undecided points past it are tried. Nothing above ``p_max`` is proposed.
    """
    undecided = sorted(
        q
        for q, v in verdicts.items()
        if v is None and q > lo and (hi is None or q < hi)
    )
    if hi is not None:
        top = hi
    elif undecided:
        top = undecided[0]
    elif lo < p_max:
        # Nothing bounds the instance yet: jump to the guess, then step up.
        return min(guess if lo < guess else lo + step, p_max)
    else:
        return None
    candidates = [q for q in range(lo + 1, top) if q not in verdicts]
    if candidates:
        mid = (lo + top) / 2
        return min(candidates, key=lambda q: (abs(q - mid), q))
    if hi is not None or len(undecided) >= _MAX_UNDECIDED:
        # Every point of a closed bracket was tried, or too many undecided.
        return None
    # No upper end, and the lowest undecided point is settled from below:
    # look a few points past it.
    last = min(top + _MAX_UNDECIDED, p_max)
    beyond = [q for q in range(top + 1, last + 1) if q not in verdicts]
    return beyond[0] if beyond else None


def _bracket(verdicts):
    """Largest p proved storable (at least 1) and smallest p proved not."""
    lo = max([1] + [p for p, v in verdicts.items() if v is True])
    not_stored = [p for p, v in verdicts.items() if v is False]
    return lo, (min(not_stored) if not_stored else None)


def _is_settled(verdicts):
    lo, hi = _bracket(verdicts)
    return hi is not None and hi - lo == 1


def _outcome(index, verdicts, solve_time):
    lo, hi = _bracket(verdicts)
    return InstanceCapacity(
        index=index,
        critical_p=lo if _is_settled(verdicts) else None,
        lower=lo,
        upper=hi,
        verdicts=dict(sorted(verdicts.items())),
        solve_time=solve_time,
    )


@dataclass(frozen=True)
class _RuleJudge:
    """Verdict of a learning rule at one p: fit it, count recalls in numpy."""

    rule: str
    recall: float
    params: dict

    def __call__(self, X, Y, Z):
        start = time.perf_counter()
        W = fit_rule(self.rule, X, Y, Z, self.params)
        n_recalled = int(recalled(W, X, Y, Z).sum())
        needed = math.ceil(self.recall * len(X) - 1e-9)
        return n_recalled >= needed, time.perf_counter() - start


def _bisect(
    index, pool, solvers, certificate_tol, guess, p_max, known, judge=None, decider=None
):
    """Find the critical p of one nested instance.

    Uses that a W storing the instance at p stores every smaller one (its
    constraints are a subset), so one verdict settles a whole side. A
    ``judge`` (a :class:`_RuleJudge`) replaces the exact verdict by a
    learning rule's, for which that monotonicity is only assumed.
    ``decider`` replaces :func:`~assoc_cvx.engine.decide` (same signature),
    e.g. a margin or listwise criterion, which is nested in p too.
    """
    verdicts = dict(known)
    lo, hi = _bracket(verdicts)
    step = max(1, guess // 8)
    solve_time = 0.0
    with threadpool_limits(limits=1):
        while hi is None or hi - lo > 1:
            p = _next_p(lo, hi, verdicts, guess, step, p_max)
            if p is None:
                break
            if p in verdicts:  # reused from a checkpoint
                v = verdicts[p]
            else:
                # Both constraint sets have p - 1 competitors per input.
                check_memory(p, p - 1, pool.n_features, pool.n_features)
                X, Y, Z = pool(p)
                if judge is None:
                    res = (decider or decide)(
                        X,
                        difference_tensor(Y, Z),
                        solvers=solvers,
                        constraints=pool.constraints,
                        certificate_tol=certificate_tol,
                        mode="verdict",
                    )
                    v = res.stored
                    solve_time += res.compile_time + res.solve_time
                else:
                    v, elapsed = judge(X, Y, Z)
                    solve_time += elapsed
                verdicts[p] = v
            if v is True:
                if p > guess:
                    step *= 2
                lo = max(lo, p)
            elif v is False:
                hi = p if hi is None else min(hi, p)
    return _outcome(index, verdicts, solve_time)


def _entropy(random_state):
    """Root seed of a run: an int is the root itself, anything else draws one."""
    if isinstance(random_state, Integral):
        return check_int(random_state, "random_state", minimum=0)
    return int(as_generator(random_state).integers(2**63))


def _run_key(n_features, constraints, distribution, entropy, certificate_tol, **extra):
    """Identity of a run in a checkpoint; ``extra`` holds non-default criteria."""
    return {
        "n_features": n_features,
        "constraints": constraints,
        "distribution": distribution,
        "entropy": str(entropy),
        "certificate_tol": certificate_tol,
        **extra,
    }


def _open_checkpoint(path):
    """Open (or create) the checkpoint for reading and appending."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            "checkpoint must be a file path (str or os.PathLike); got "
            f"{path!r} of type {type(path).__name__}."
        )
    return open(path, "a+b")  # closed by find_capacity


def _checkpoint_row(text, key):
    """``(index, verdicts)`` of one line of this run; None for another run.

    Raises ValueError, saying what is wrong, for a malformed line.
    """
    try:
        row = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("it is not valid JSON (an interrupted write?)") from None
    if not isinstance(row, dict) or "key" not in row:
        raise ValueError("it is not a JSON object with a 'key'")
    if row["key"] != key:
        return None
    index = row.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"'index' must be an integer >= 0; got {index!r}")
    verdicts = row.get("verdicts")
    if not isinstance(verdicts, dict):
        raise ValueError(f"'verdicts' must be an object; got {verdicts!r}")
    parsed = {}
    for p, v in verdicts.items():
        if not _P_KEY.fullmatch(p) or int(p) < 2:
            raise ValueError(f"verdict key {p!r} is not an integer p >= 2")
        if not (v is True or v is False or v is None):
            raise ValueError(f"verdict at p={p} must be true, false or null; got {v!r}")
        parsed[int(p)] = v
    return index, parsed


def _read_checkpoint(fh, path, key, n_instances):
    """Verdicts already computed for this run, by instance index.

    Lines of other runs are skipped, and so are instances beyond
    ``n_instances`` (they belong to a longer run with the same seed).
    """
    fh.seek(0)
    done = {}
    for lineno, raw in enumerate(fh.read().split(b"\n"), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"Checkpoint {os.fspath(path)!r} is not a JSON-lines file written "
                f"by find_capacity: line {lineno} is not UTF-8 text. Pass a new "
                "path, or the file of an earlier run."
            ) from None
        if not text.strip():
            continue
        try:
            row = _checkpoint_row(text, key)
        except ValueError as exc:
            warnings.warn(
                f"Ignoring line {lineno} of checkpoint {os.fspath(path)!r}: {exc}. "
                "Instances not found in the rest of the file are recomputed.",
                CheckpointWarning,
                stacklevel=3,
            )
            continue
        if row is not None and row[0] < n_instances:
            done.setdefault(row[0], {}).update(row[1])
    for index, verdicts in list(done.items()):
        lo, hi = _bracket(verdicts)
        if hi is not None and hi <= lo:
            warnings.warn(
                f"Checkpoint {os.fspath(path)!r} says instance {index} is storable "
                f"at p={lo} but not at p={hi}, which nested instances cannot be; "
                "its verdicts are ignored and it is recomputed.",
                CheckpointWarning,
                stacklevel=3,
            )
            del done[index]
    return done


def _append_checkpoint(fh, key, outcome):
    row = {
        "key": key,
        "index": outcome.index,
        "verdicts": {str(p): v for p, v in outcome.verdicts.items()},
    }
    data = (json.dumps(row) + "\n").encode("ascii")
    regular = stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
    if regular and fh.seek(0, os.SEEK_END) > 0:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":  # a torn last line: start a new one
            data = b"\n" + data
    fh.write(data)
    fh.flush()
    if regular:  # fsync fails on devices and pipes such as /dev/null
        os.fsync(fh.fileno())


def _check_n_jobs(n_jobs):
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral):
        raise TypeError(
            f"n_jobs must be None or a nonzero integer; got {n_jobs!r} "
            f"of type {type(n_jobs).__name__}."
        )
    if n_jobs == 0:
        raise ValueError("n_jobs must be None or a nonzero integer; got 0.")


def find_capacity(
    n_features: int,
    *,
    constraints: str = "coupled",
    n_instances: int = 20,
    random_state: int
    | np.random.SeedSequence
    | np.random.Generator
    | np.random.RandomState
    | None = None,
    n_jobs: int | None = None,
    distribution: str = "gaussian",
    solver: str = "auto",
    certificate_tol: float = CERTIFICATE_TOL,
    p_max: int | None = None,
    confidence: float = 0.95,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
    callback: Callable[[InstanceCapacity], object] | None = None,
    rule: str = "max_margin",
    recall: float = 1.0,
    rule_params: dict | None = None,
    kappa: float = 0.0,
    retrieval: str = "top1",
    r: float | None = None,
) -> CapacityResult:
    r"""Measure the storage capacity of random d x d linear memories.

    Each instance is a pool of random patterns whose first p rows form the
    instance at p; since the constraints at p are a subset of those at
    p + 1, storability is monotone in p and bisection finds each instance's
    exact critical p, the largest storable p. The capacity is the median
    over instances.

    Parameters
    ----------
    n_features : int
        Dimension d >= 1 of inputs and targets.
    constraints : {"coupled", "decoupled"}, default="coupled"
        Competitors are the other targets (coupled) or private random
        vectors, p - 1 per input (decoupled).
    n_instances : int, default=20
        Number of independent instances.
    random_state : None, int, SeedSequence, Generator or RandomState, default=None
        Root seed of the run. An int >= 0 is the root itself; None draws a
        fresh one; a SeedSequence, Generator or RandomState is used to draw
        one (advancing a Generator or RandomState). Instance i depends only
        on the root and i, so results are reproducible and do not depend on
        ``n_jobs``. The root is returned as ``result.entropy``.
    n_jobs : int, default=None
        Instances solved in parallel by joblib (-1: all cores; None: 1, or
        the ``n_jobs`` of an enclosing ``joblib.parallel_config``), never
        more than there are instances left to solve. Each worker limits BLAS
        to one thread.
    distribution : {"gaussian", "sphere"}, default="gaussian"
        Pattern distribution, as in :func:`make_associations`.
    solver : {"auto", "IPM", "ECOS", "CLARABEL", "HIGHS", "SCS"}, default="auto"
        First solver tried on each instance (case-insensitive); the others
        installed are the fallback when it is undecided (see
        :func:`check_storage`).
    certificate_tol : float, default=1e-8
        Cut on the certificate bound for "not storable" (see
        :func:`check_storage`).
    p_max : int, default=None
        Largest p tried, at least 2; default ``2 * d**2 + 2``.
    confidence : float, default=0.95
        Level of the confidence interval of the median, in (0, 1).
    checkpoint : str or os.PathLike, default=None
        JSON-lines file to which each finished instance is appended; it is
        created, or opened for appending, before anything is solved. A run
        with the same ``n_features``, ``constraints``, ``distribution``,
        ``certificate_tol`` and int ``random_state`` reuses the verdicts
        found there, so an interrupted run resumes. The file is trusted:
        its verdicts are not solved again, and instances it settles are
        not recomputed. Malformed lines are ignored with a warning.
    progress : bool, default=False
        Show a progress bar on stderr (tqdm; off when it is not a terminal);
        True or False.
    callback : callable, default=None
        Called in the main process with each :class:`InstanceCapacity` as it
        finishes (after it is written to ``checkpoint``).
    rule : {"max_margin", "hebbian", "pseudo_inverse", "gradient"}
        ``"max_margin"`` (the default): exact verdicts of the convex
        programs (``solver`` and ``certificate_tol`` apply). A learning rule (see
        :mod:`assoc_cvx.rules`): the instance counts as storable at p when
        the rule's W, checked in numpy, recalls at least ``recall`` of the
        p associations. Such capacities are lower bounds, not certified
        limits (see Notes).
    recall : float, default=1.0
        Fraction in (0, 1] of associations a learning rule must recall,
        e.g. 0.99 (rounded up to whole associations: below p = 100, 0.99
        means all). Must be 1.0 for ``"max_margin"``.
    rule_params : dict, default=None
        Settings of ``rule="gradient"`` (``optimizer``, ``learning_rate``,
        ``max_iter``, ``tol``, ``momentum``, ``early_stopping``,
        ``random_state``; see :func:`assoc_cvx.rules.gradient_weights`).
    kappa : float, default=0.0
        Required normalised margin, >= 0 (at ``||W||_F = d``, in standard
        deviations of a competitor's score; see :mod:`assoc_cvx.margin`).
        kappa > 0 is decided by the max-margin solve of the structured solver
        when it comes first, else (or when that is not decisive) by the
        Frobenius-ball cone solvers. Margins and listwise retrieval apply to
        ``rule="max_margin"`` only.
    retrieval : {"top1", "listwise"}, default="top1"
        ``"listwise"``: the target's score must beat the mean of the top
        r-fraction of the competitors' scores (plus kappa) instead of each
        of them (see :func:`assoc_cvx.margin.check_listwise`). Both criteria
        are nested in p, so bisection stays exact.
    r : float in (0, 1], default=None
        Tail fraction, required with ``retrieval="listwise"`` only.

    Returns
    -------
    result : CapacityResult
        Per-instance critical p, median with confidence interval, the
        fraction-storable curve, alpha and the asymptotic prediction.

    Raises
    ------
    OSError
        When ``checkpoint`` cannot be opened for appending (missing
        directory, a directory, no permission).

    Warns
    -----
    SolverWarning
        When some instance's critical p could not be decided exactly because
        a verdict stayed undecided; it is then left out of the median, and
        its bounds are in ``instances``.
    CapacityWarning
        When some instance is storable at every p up to ``p_max`` (it is left
        out of the median too; raise ``p_max``).
    CheckpointWarning
        When a line of ``checkpoint`` is malformed and ignored.

    See Also
    --------
    check_storage : the verdict at one p.

    Notes
    -----
    The asymptotic capacity (arXiv 2605.10795) solves
    :math:`p \log p / d^2 = 1/2` for both constraint sets; convergence is
    slow, and at d = 10 and 20 the measured capacity is about 1.7 times it.

    With a learning rule the critical p of an instance is found by the same
    bisection, which assumes that the rule succeeds at every p below one
    where it succeeds. Nothing guarantees that for these rules, and a rule
    that fails proves nothing about other matrices, so the result is a lower
    bound on the exact capacity of the same instances (same
    ``random_state``), not a certified limit.

    Examples
    --------
    >>> from assoc_cvx import find_capacity
    >>> result = find_capacity(4, n_instances=3, random_state=0)
    >>> result.critical_p.shape
    (3,)
    """
    d = check_int(n_features, "n_features")
    check_option(constraints, "constraints", CONSTRAINT_SETS)
    n_instances = check_int(n_instances, "n_instances")
    check_option(distribution, "distribution", DISTRIBUTIONS)
    solvers = resolve_solvers(solver)
    solver = "auto" if solver.upper() == "AUTO" else solver.upper()
    check_option(rule, "rule", CAPACITY_RULES)
    if isinstance(recall, bool) or not (isinstance(recall, Real) and 0 < recall <= 1):
        raise ValueError(f"recall must be a number in (0, 1]; got {recall!r}.")
    recall = float(recall)
    if rule == "max_margin" and recall != 1.0:
        raise ValueError(
            "recall must be 1.0 with rule='max_margin' (exact storage of every "
            f"association); got {recall!r}. Use a learning rule for partial recall."
        )
    if rule_params is not None and rule != "gradient":
        raise ValueError(
            f"rule_params applies to rule='gradient' only; got rule={rule!r}."
        )
    params = check_rule_params(rule_params, "rule_params") if rule == "gradient" else {}
    seed = params.get("random_state")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)):
        raise TypeError(
            "rule_params['random_state'] must be None or an int, so that the "
            f"run can be checkpointed and repeated; got {type(seed).__name__}."
        )
    judge = None if rule == "max_margin" else _RuleJudge(rule, recall, params)
    kappa = check_kappa(kappa)
    r = _check_retrieval(retrieval, r)
    decider, extra = None, {}
    if kappa > 0 or r is not None:
        solvers = margin_solvers(solvers)
        decider = partial(decide_margin, kappa=kappa, r=r)
        extra = {"kappa": kappa, "retrieval": retrieval, "r": r}
    if judge is not None and decider is not None:
        raise ValueError(
            "kappa > 0 and listwise retrieval apply to rule='max_margin' only; "
            f"got rule={rule!r}."
        )
    certificate_tol = check_positive(certificate_tol, "certificate_tol")
    p_max = 2 * d * d + 2 if p_max is None else check_int(p_max, "p_max", minimum=2)
    if not (isinstance(confidence, Real) and 0 < confidence < 1):
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}.")
    _check_n_jobs(n_jobs)
    progress = check_bool(progress, "progress")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable or None; got {type(callback).__name__}."
        )
    if checkpoint is not None and (
        isinstance(random_state, bool) or not isinstance(random_state, Integral)
    ):
        raise ValueError(
            "checkpoint needs a fixed random_state (an int), so that a rerun "
            f"draws the same instances and can resume; got {random_state!r}."
        )
    entropy = _entropy(random_state)
    seeds = _instance_seeds(entropy, n_instances)
    guess = _GUESS_FACTOR * asymptotic_capacity(d)
    if r is not None:  # listwise capacity grows like d^2 (and is >= top-1)
        guess = max(guess, 0.8 * listwise_alpha(r) * d * d)
    guess = int(np.clip(round(guess), 2, p_max))
    key = _run_key(d, constraints, distribution, entropy, certificate_tol, **extra)
    if judge is not None:
        key.update(
            rule=rule,
            recall=recall,
            rule_params={**params, "random_state": None if seed is None else str(seed)},
        )

    start = time.perf_counter()
    fh = None if checkpoint is None else _open_checkpoint(checkpoint)
    try:
        known = {} if fh is None else _read_checkpoint(fh, checkpoint, key, n_instances)
        settled = sorted(i for i, verdicts in known.items() if _is_settled(verdicts))
        todo = [
            (
                i,
                NestedPool(d, constraints, distribution, seeds[i]),
                solvers,
                certificate_tol,
                guess,
                p_max,
                known.get(i, {}),
                judge,
                decider,
            )
            for i in sorted(set(range(n_instances)) - set(settled))
        ]
        outcomes = {}
        bar = tqdm(
            total=n_instances,
            desc=f"d={d} {constraints}",
            unit="instance",
            disable=None if progress else True,
        )
        with bar:
            # Instances the checkpoint settles never go to a worker.
            finished = (_outcome(i, known[i], 0.0) for i in settled)
            jobs = ()
            if todo:
                workers = min(effective_n_jobs(n_jobs), len(todo))
                jobs = Parallel(n_jobs=workers, return_as="generator_unordered")(
                    delayed(_bisect)(*args) for args in todo
                )
            for outcome in itertools.chain(finished, jobs):
                outcomes[outcome.index] = outcome
                if fh is not None and outcome.verdicts != known.get(outcome.index):
                    _append_checkpoint(fh, key, outcome)
                bar.update(1)
                logger.info(
                    "instance %d: critical p %s (bounds %s..%s)",
                    outcome.index,
                    outcome.critical_p,
                    outcome.lower,
                    outcome.upper,
                )
                if callback is not None:
                    callback(outcome)
    finally:
        if fh is not None:
            fh.close()
    instances = tuple(outcomes[i] for i in range(n_instances))
    return _summarise(
        instances,
        d=d,
        p_max=p_max,
        constraints=constraints,
        distribution=distribution,
        entropy=entropy,
        confidence=float(confidence),
        elapsed=time.perf_counter() - start,
        solver=solver,
        rule=rule,
        recall=recall,
        kappa=kappa,
        retrieval=retrieval,
        r=r,
    )


def _summarise(instances, *, d, p_max, confidence, **info):
    exact = np.array([r.critical_p for r in instances if r.critical_p is not None])
    undecided = [r for r in instances if r.critical_p is None and _hit_undecided(r)]
    at_p_max = len(instances) - exact.size - len(undecided)
    if undecided:
        warnings.warn(
            f"{len(undecided)} of {len(instances)} instances have no exact critical "
            "p because a verdict stayed undecided; they are left out of the "
            "median. result.instances holds their verdicts and bounds.",
            SolverWarning,
            stacklevel=3,
        )
    if at_p_max:
        warnings.warn(
            f"{at_p_max} of {len(instances)} instances are storable at every p up "
            f"to p_max={p_max}, so their critical p is not known; they are left "
            "out of the median. Raise p_max.",
            CapacityWarning,
            stacklevel=3,
        )
    if exact.size:
        capacity = float(np.median(exact))
        ci = quantile_test(exact, q=capacity, p=0.5).confidence_interval(confidence)
        interval = (float(ci.low), float(ci.high))
        alpha = float(capacity_alpha(capacity, d)) if capacity > 1 else 0.0
        ps = np.arange(1, exact.max() + 2)
        frac = (exact[None, :] >= ps[:, None]).mean(axis=1)
        curve = (ps, frac)
    else:
        capacity = alpha = np.nan
        interval = (np.nan, np.nan)
        curve = (np.array([], dtype=int), np.array([]))
    return CapacityResult(
        n_features=d,
        instances=instances,
        capacity=capacity,
        interval=interval,
        confidence=confidence,
        alpha=alpha,
        asymptote=asymptotic_capacity(d),
        _curve=curve,
        **info,
    )


def _hit_undecided(outcome):
    """Whether an undecided verdict lies inside the instance's bracket."""
    return any(
        v is None and p > outcome.lower and (outcome.upper is None or p < outcome.upper)
        for p, v in outcome.verdicts.items()
    )
