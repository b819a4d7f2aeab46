"""Capacity of random instances: exact critical p by bisection on nested pools."""

import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import quantile_test
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from assoc_cvx._validation import check_int, check_option
from assoc_cvx.engine import CERTIFICATE_TOL, decide, resolve_solvers
from assoc_cvx.exceptions import SolverWarning
from assoc_cvx.patterns import DISTRIBUTIONS, NestedPool
from assoc_cvx.programs import CONSTRAINT_SETS, difference_tensor
from assoc_cvx.theory import asymptotic_capacity, capacity_alpha

__all__ = ["CapacityResult", "InstanceCapacity", "find_capacity"]

logger = logging.getLogger(__name__)

#: First guess of the critical p, as a multiple of the asymptotic capacity
#: (the measured ratio is about 1.7 at d = 10 and d = 20).
_GUESS_FACTOR = 1.7
#: Undecided verdicts tolerated in one bracket before an instance is given up.
_MAX_UNDECIDED = 3


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
        Seconds spent in compilation and solvers.
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
        of the critical p; infinite ends when too few instances).
    confidence : float
        Confidence level of ``interval``.
    alpha : float
        ``capacity * log(capacity) / d**2``, which tends to 1/2 as d grows.
    asymptote : float
        Large-d prediction, the p solving ``p log p / d**2 = 1/2``.
    elapsed : float
        Wall-clock seconds of the run.
    solver : str
        Solver requested.
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
    _curve: tuple = field(default=(), repr=False)

    @property
    def critical_p(self):
        """ndarray of shape (n_instances,): exact critical p, NaN if undecided."""
        return np.array(
            [np.nan if r.critical_p is None else r.critical_p for r in self.instances]
        )

    @property
    def n_undecided(self):
        """Number of instances whose critical p is not known exactly."""
        return int(sum(r.critical_p is None for r in self.instances))

    @property
    def curve(self):
        """Fraction of instances storable at each p, as (p, fraction) arrays.

        Only instances decided exactly count; an instance is storable at p
        when its critical p is at least p.
        """
        p, frac = self._curve
        return np.asarray(p), np.asarray(frac)

    def to_frame(self):
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

    def curve_frame(self):
        """The fraction-storable curve: a DataFrame of p, alpha and fraction."""
        import pandas as pd

        p, frac = self.curve
        return pd.DataFrame(
            {"p": p, "alpha": capacity_alpha(p, self.n_features), "fraction": frac}
        )

    def summary(self):
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
            "elapsed": self.elapsed,
        }

    def to_dict(self):
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

    def instance(self, index, n_patterns):
        """Regenerate the patterns of instance ``index`` at ``n_patterns``.

        Returns
        -------
        X, Y : ndarray of shape (n_patterns, n_features)
        Z : ndarray of shape (n_patterns, n_patterns - 1, n_features) or None
            Competitors (decoupled runs only).
        """
        pool = _pool(self, index)
        return pool(check_int(n_patterns, "n_patterns", minimum=2))


def _plain(x):
    x = float(x)
    return None if np.isnan(x) else x


def _instance_seeds(entropy, n_instances):
    return np.random.SeedSequence(entropy).spawn(n_instances)


def _pool(result, index):
    seed = _instance_seeds(result.entropy, len(result.instances))[index]
    return NestedPool(result.n_features, result.constraints, result.distribution, seed)


def _next_p(lo, hi, verdicts, guess, step):
    """Next p to solve given the bracket, or None when nothing is left to try.

    ``lo`` is proved storable and ``hi`` (or None) proved not storable. An
    undecided p inside the bracket acts as a provisional upper end: the
    points below it are settled first, then at most ``_MAX_UNDECIDED``
    points past it are tried.
    """
    undecided = sorted(
        q
        for q, v in verdicts.items()
        if v is None and q > lo and (hi is None or q < hi)
    )
    top = hi if hi is not None else (undecided[0] if undecided else None)
    if top is None:
        return guess if lo < guess else lo + step
    candidates = [q for q in range(lo + 1, top) if q not in verdicts]
    if candidates:
        mid = (lo + top) / 2
        return min(candidates, key=lambda q: (abs(q - mid), q))
    beyond = [q for q in range(top + 1, hi or top + _MAX_UNDECIDED + 1)]
    beyond = [q for q in beyond if q not in verdicts]
    if beyond and len(undecided) < _MAX_UNDECIDED:
        return beyond[0]
    return None


def _bisect(index, pool, solvers, certificate_tol, guess, p_max, known):
    """Find the critical p of one nested instance.

    Uses that a W storing the instance at p stores every smaller one (its
    constraints are a subset), so one verdict settles a whole side.
    """
    verdicts = dict(known)
    lo = max([1] + [p for p, v in verdicts.items() if v is True])
    not_stored = [p for p, v in verdicts.items() if v is False]
    hi = min(not_stored) if not_stored else None
    step = max(1, guess // 8)
    solve_time = 0.0
    with threadpool_limits(limits=1):
        while hi is None or hi - lo > 1:
            p = _next_p(lo, hi, verdicts, guess, step)
            if p is None or p > p_max:
                break
            if p in verdicts:  # reused from a checkpoint
                v = verdicts[p]
            else:
                X, Y, Z = pool(p)
                res = decide(
                    X,
                    difference_tensor(Y, Z),
                    solvers=solvers,
                    constraints=pool.constraints,
                    certificate_tol=certificate_tol,
                )
                v = res.stored
                solve_time += res.compile_time + res.solve_time
                verdicts[p] = v
            if v is True:
                if p > guess:
                    step *= 2
                lo = max(lo, p)
            elif v is False:
                hi = p if hi is None else min(hi, p)
    exact = hi is not None and hi - lo == 1
    return InstanceCapacity(
        index=index,
        critical_p=lo if exact else None,
        lower=lo,
        upper=hi,
        verdicts=dict(sorted(verdicts.items())),
        solve_time=solve_time,
    )


def _entropy(random_state):
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, bool) or not isinstance(
        random_state, Integral | np.random.Generator | np.random.RandomState
    ):
        raise TypeError(
            "random_state must be None, an int >= 0, a numpy Generator or "
            f"RandomState; got {type(random_state).__name__}."
        )
    if isinstance(random_state, Integral):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0; got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    return int(random_state.randint(2**31 - 1))


def _run_key(n_features, constraints, distribution, entropy, certificate_tol):
    return {
        "n_features": n_features,
        "constraints": constraints,
        "distribution": distribution,
        "entropy": str(entropy),
        "certificate_tol": certificate_tol,
    }


def _read_checkpoint(path, key):
    """Verdicts already computed for this run, by instance index."""
    done = {}
    if not os.path.exists(path):
        return done
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                if row["key"] != key:
                    continue
                done[int(row["index"])] = {
                    int(p): v for p, v in row["verdicts"].items()
                }
            except (ValueError, KeyError, TypeError):
                warnings.warn(
                    f"Skipping unreadable line {lineno} of checkpoint {path} "
                    "(an interrupted write); that instance will be recomputed.",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return done


def _append_checkpoint(path, key, outcome):
    row = {
        "key": key,
        "index": outcome.index,
        "verdicts": {str(p): v for p, v in outcome.verdicts.items()},
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def find_capacity(
    n_features,
    *,
    constraints="coupled",
    n_instances=20,
    random_state=None,
    n_jobs=None,
    distribution="gaussian",
    solver="auto",
    certificate_tol=CERTIFICATE_TOL,
    p_max=None,
    confidence=0.95,
    checkpoint=None,
    progress=False,
    callback=None,
):
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
    random_state : None, int, numpy.random.Generator, default=None
        Root seed. Instance i depends only on it and i, so results are
        reproducible and do not depend on ``n_jobs``. The root actually used
        is returned as ``result.entropy``.
    n_jobs : int, default=None
        Instances solved in parallel (joblib; None means 1, -1 all cores).
        Each worker limits BLAS to one thread.
    distribution : {"gaussian", "sphere"}, default="gaussian"
        Pattern distribution, as in :func:`make_associations`.
    solver : {"auto", "ECOS", "CLARABEL", "HIGHS", "SCS"}, default="auto"
        First solver tried on each instance; the others installed are the
        fallback when it is undecided (see :func:`check_storage`).
    certificate_tol : float, default=1e-8
        Cut on the certificate bound for "not storable" (see
        :func:`check_storage`).
    p_max : int, default=None
        Largest p tried; default ``2 * d**2``.
    confidence : float, default=0.95
        Level of the confidence interval of the median.
    checkpoint : str or path-like, default=None
        JSON-lines file to which each finished instance is appended. A run
        with the same parameters and ``random_state`` reuses the instances
        found there, so an interrupted run resumes. Needs an explicit
        ``random_state``.
    progress : bool, default=False
        Show a progress bar on stderr (tqdm; off when it is not a terminal).
    callback : callable, default=None
        Called in the main process with each :class:`InstanceCapacity` as it
        finishes.

    Returns
    -------
    result : CapacityResult
        Per-instance critical p, median with confidence interval, the
        fraction-storable curve, alpha and the asymptotic prediction.

    Warns
    -----
    SolverWarning
        When some instance's critical p could not be decided exactly; it is
        then left out of the median, and its bounds are in ``instances``.

    See Also
    --------
    check_storage : the verdict at one p.

    Notes
    -----
    The asymptotic capacity (arXiv 2605.10795) solves
    :math:`p \log p / d^2 = 1/2` for both constraint sets; convergence is
    slow, and at d = 10 and 20 the measured capacity is about 1.7 times it.

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
    if not (isinstance(certificate_tol, Real) and certificate_tol > 0):
        raise ValueError(
            f"certificate_tol must be a positive number; got {certificate_tol!r}."
        )
    p_max = 2 * d * d if p_max is None else check_int(p_max, "p_max", minimum=2)
    p_max = max(p_max, 2)
    if not (isinstance(confidence, Real) and 0 < confidence < 1):
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}.")
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0
    ):
        raise ValueError(f"n_jobs must be None or a nonzero integer; got {n_jobs!r}.")
    if checkpoint is not None and random_state is None:
        raise ValueError(
            "checkpoint needs a fixed random_state (an int), so that a rerun "
            "draws the same instances and can resume."
        )
    entropy = _entropy(random_state)
    seeds = _instance_seeds(entropy, n_instances)
    guess = int(np.clip(round(_GUESS_FACTOR * asymptotic_capacity(d)), 2, p_max))
    key = _run_key(d, constraints, distribution, entropy, float(certificate_tol))
    known = {} if checkpoint is None else _read_checkpoint(checkpoint, key)

    start = time.perf_counter()
    outcomes = {}
    todo = []
    for i in range(n_instances):
        pool = NestedPool(d, constraints, distribution, seeds[i])
        args = (i, pool, solvers, float(certificate_tol), guess, p_max)
        todo.append((*args, known.get(i, {})))

    bar = tqdm(
        total=n_instances,
        desc=f"d={d} {constraints}",
        unit="instance",
        disable=None if progress else True,
    )
    jobs = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_bisect)(*args) for args in todo
    )
    with bar:
        for outcome in jobs:
            outcomes[outcome.index] = outcome
            if checkpoint is not None and outcome.verdicts != known.get(outcome.index):
                _append_checkpoint(checkpoint, key, outcome)
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
    instances = tuple(outcomes[i] for i in range(n_instances))
    return _summarise(
        instances,
        d=d,
        constraints=constraints,
        distribution=distribution,
        entropy=entropy,
        confidence=float(confidence),
        elapsed=time.perf_counter() - start,
        solver=solver,
    )


def _summarise(instances, *, d, confidence, **info):
    exact = np.array([r.critical_p for r in instances if r.critical_p is not None])
    n_undecided = len(instances) - exact.size
    if n_undecided:
        warnings.warn(
            f"{n_undecided} of {len(instances)} instances have no exact critical p "
            "(a verdict stayed undecided or p_max was reached); they are left out "
            "of the median. See result.instances for their bounds.",
            SolverWarning,
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
