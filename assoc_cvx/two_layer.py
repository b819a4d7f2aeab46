r"""Two-layer linear memories ``W = W2 W1`` with a hidden layer of width k.

A two-layer memory maps an input x to the output ``W2 W1 x`` through a hidden
layer of width ``k = beta d`` (``W1`` of shape (k, d_in), ``W2`` of shape
(d_out, k)); it stores the associations when every margin
``(y_mu - y_nu)^T W2 W1 x_mu`` is positive. Its product is exactly a matrix of
rank at most k, so for ``k >= min(d_in, d_out)`` it stores what one layer
stores.

- **Frozen first layer** (random ``W1``): the margins are linear in ``W2``,
  with hidden inputs ``h_mu = W1 x_mu``, so storage is decided exactly by the
  scale-free program of :func:`assoc_cvx.engine.decide` on ``(H, D)`` and
  the capacity is exact (:func:`find_two_layer_capacity` with
  ``mode="frozen"``). When the inputs are isotropic, only the row space of
  ``W1`` matters, so the frozen model is a one-layer memory with k-dimensional
  inputs and ``d_out k`` weights, and ``p log p / (d k) -> 1/2``, that is
  ``p log p / d^2 -> beta / 2`` (design notes §6).
- **Both layers trained**: storage by a rank-k matrix is not convex. This
  module searches for a storing pair in two ways, from several starts:
  alternating convex sub-problems (with one layer fixed, the margins are
  linear in the other: ``D^T W2 (W1 x)`` in ``W2``, ``(W2^T D)^T W1 x`` in
  ``W1``; each sub-problem is first decided exactly, then, when it cannot
  store the set, improved by the soft-margin program), and plain gradient
  descent (Adam) on the softmax cross-entropy of the margins. A pair found
  is checked in float64 through its factors, so "stored" is proved; failing
  to find one proves nothing, and the capacity found is a **lower bound**.
  It is never below the frozen-layer capacity of the same instance (the
  first start is the frozen ``W1``) and never above the one-layer capacity
  (a rank-k product is a one-layer memory).
"""

import logging
import math
import time
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from threadpoolctl import threadpool_limits

from assoc_cvx._validation import (
    check_competitors,
    check_int,
    check_matrix,
    check_option,
    check_patterns,
    check_positive,
    rms_row_norm,
)
from assoc_cvx.capacity import (
    _GUESS_FACTOR,
    _bisect,
    _check_n_jobs,
    _entropy,
    _instance_seeds,
)
from assoc_cvx.engine import (
    CERTIFICATE_TOL,
    SOLVER_OPTIONS,
    StorageResult,
    decide,
    resolve_solvers,
    solve_program,
)
from assoc_cvx.margin import MARGIN_SOLVERS
from assoc_cvx.patterns import DISTRIBUTIONS, NestedPool, as_generator
from assoc_cvx.programs import CONSTRAINT_SETS, difference_tensor, soft_margin_program
from assoc_cvx.theory import asymptotic_capacity

__all__ = [
    "MODES",
    "TwoLayerCapacity",
    "TwoLayerInstance",
    "TwoLayerResult",
    "check_frozen_storage",
    "find_two_layer_capacity",
    "hidden_width",
    "random_first_layer",
    "train_two_layer",
    "two_layer_margins",
]

logger = logging.getLogger(__name__)

#: Capacity modes of :func:`find_two_layer_capacity`.
MODES = ("frozen", "trained")
#: Search methods of :func:`train_two_layer`.
METHODS = ("both", "alternating", "gradient")


def hidden_width(n_features: int, hidden_ratio: float) -> int:
    """Hidden width ``k = max(1, round(beta d))`` for ratio beta > 0."""
    d = check_int(n_features, "n_features")
    beta = check_positive(hidden_ratio, "hidden_ratio")
    return max(1, round(beta * d))


def random_first_layer(n_hidden: int, n_features: int, *, random_state=None):
    """A random first layer of shape (k, d) with i.i.d. N(0, 1/d) entries.

    Parameters
    ----------
    n_hidden : int
        Hidden width k >= 1.
    n_features : int
        Input dimension d >= 1.
    random_state : None, int, Generator or SeedSequence, default=None

    Returns
    -------
    W1 : ndarray of shape (n_hidden, n_features)
    """
    k = check_int(n_hidden, "n_hidden")
    d = check_int(n_features, "n_features")
    rng = as_generator(random_state)
    return rng.standard_normal((k, d)) / math.sqrt(d)


def two_layer_margins(W1, W2, X, D):
    r"""Rigorous lower bounds on the margins of ``W2 W1``, through its factors.

    Computes ``m[mu, k] = D[mu, k]^T W2 (W1 x_mu)`` in float64 and subtracts
    the standard bound on its rounding error,
    ``gamma * |D|^T |W2| |W1| |x|`` with ``gamma = (d_in + k + d_out + 3)
    eps``, so a positive result proves the exact margin of the two factors
    positive.

    Returns
    -------
    lower : ndarray of shape (p, K)
    """
    H = X @ W1.T
    m = np.einsum("mkd,md->mk", D, H @ W2.T)
    size = np.einsum("mkd,md->mk", np.abs(D), (np.abs(X) @ np.abs(W1).T) @ np.abs(W2).T)
    gamma = (X.shape[1] + W1.shape[0] + D.shape[2] + 3) * np.finfo(np.float64).eps
    return m - gamma * size


def _validated(X, Y, competitors):
    X, Y = check_patterns(X, Y)
    if competitors is not None:
        competitors = check_competitors(competitors, *X.shape)
    return X, Y, competitors


def check_frozen_storage(
    X,
    Y,
    W1,
    *,
    competitors=None,
    solver: str = "auto",
    certificate_tol: float = CERTIFICATE_TOL,
) -> StorageResult:
    r"""Decide exactly whether a second layer stores the set through fixed ``W1``.

    Parameters
    ----------
    X, Y : array-like of shape (p, d)
        Inputs and targets.
    W1 : array-like of shape (k, d)
        The frozen first layer: finite, real, k >= 1 rows.
    competitors : array-like of shape (p, K, d), default=None
        Private competitors (decoupled set); None for the coupled set.
    solver : {"auto", "IPM", "ECOS", "CLARABEL", "HIGHS", "SCS"}, default="auto"
    certificate_tol : float, default=1e-8

    Returns
    -------
    result : StorageResult
        When stored, ``result.W`` is the second layer ``W2`` of shape (d, k).

    Notes
    -----
    With ``h_mu = W1 x_mu`` (computed in float64) the margins
    ``(y_mu - y_nu)^T W2 h_mu`` are linear in ``W2``, and the verdict is that
    of :func:`assoc_cvx.engine.decide` on inputs ``H``, with the same
    evidence. For ``k < d`` the hidden inputs span at most k dimensions.

    Examples
    --------
    >>> from assoc_cvx import make_associations
    >>> from assoc_cvx.two_layer import check_frozen_storage, random_first_layer
    >>> X, Y = make_associations(6, 8, random_state=0)
    >>> W1 = random_first_layer(6, 8, random_state=1)
    >>> check_frozen_storage(X, Y, W1).W.shape
    (8, 6)
    """
    X, Y, competitors = _validated(X, Y, competitors)
    W1 = check_matrix(W1, "W1", ("k", X.shape[1]), what="as many columns as X")
    return decide(
        X @ W1.T,
        difference_tensor(Y, competitors),
        solvers=resolve_solvers(solver),
        constraints="coupled" if competitors is None else "decoupled",
        certificate_tol=check_positive(certificate_tol, "certificate_tol"),
    )


@dataclass(frozen=True)
class TwoLayerResult:
    """Outcome of :func:`train_two_layer`.

    Attributes
    ----------
    stored : bool
        True when a pair was found whose margins are all proved positive (see
        :func:`two_layer_margins`); False means only that none was found.
    W1 : ndarray of shape (k, d_in)
    W2 : ndarray of shape (d_out, k)
        The storing pair when stored, else the pair of largest smallest margin
        seen (normalised by ``||W2 W1||_F``).
    method : str or None
        What found the storing pair: ``"frozen"`` (the first, convex step on
        the given W1), ``"alternating"`` or ``"gradient"``.
    start : int or None
        The start that found it (0 is the given or frozen W1).
    margin : float
        Smallest margin lower bound of ``W2 W1 / ||W2 W1||_F``.
    elapsed : float
        Seconds.
    """

    stored: bool
    W1: np.ndarray = field(repr=False)
    W2: np.ndarray = field(repr=False)
    method: str | None
    start: int | None
    margin: float
    elapsed: float


def _normalised_min(W1, W2, X, D):
    norm = np.linalg.norm(W2 @ W1)
    if not norm > 0:
        return -np.inf
    return float(two_layer_margins(W1, W2, X, D).min()) / norm


def _soft_step(X, D, C, solvers):
    """Soft-margin solution of one layer (balanced scales), or None."""
    balance = math.sqrt(rms_row_norm(X) / rms_row_norm(D))
    program = soft_margin_program(X / balance, D * balance, C=C)
    for name in [s for s in solvers if s in MARGIN_SOLVERS]:  # cvxpy cone solvers
        run = solve_program(program, name, SOLVER_OPTIONS.get(name, {}))
        W = program.W.value
        if run.status == cp.OPTIMAL and W is not None and np.all(np.isfinite(W)):
            return np.asarray(W, dtype=np.float64)
    return None


def _alternate(W1, X, D, solvers, certificate_tol, n_rounds, C):
    """Alternating convex sub-problems from ``W1``; returns (W1, W2, found)."""
    W2 = None
    for _ in range(n_rounds):
        H = X @ W1.T
        res = decide(
            H, D, solvers=solvers, constraints="", certificate_tol=certificate_tol
        )
        if res.stored:
            return W1, res.W, True
        W2_new = _soft_step(H, D, C, solvers)
        if W2_new is None:
            break
        W2 = W2_new
        D1 = D @ W2  # (p, K, k): the W1 sub-problem's difference vectors
        res = decide(
            X, D1, solvers=solvers, constraints="", certificate_tol=certificate_tol
        )
        if res.stored:
            return res.W, W2, True
        W1_new = _soft_step(X, D1, C, solvers)
        if W1_new is None:
            break
        W1 = W1_new
    if W2 is None:
        W2 = np.zeros((D.shape[2], W1.shape[0]))
    return W1, W2, False


def _adam_cross_entropy(W1, W2, X, D, *, max_steps, lr, check_every):
    """Adam on the softmax cross-entropy of the margins; stops once stored.

    The loss of input mu, ``log(1 + sum_k exp(-m_{mu k}))``, is the softmax
    cross-entropy of its target against its competitors. Returns
    ``(W1, W2, found)``.
    """
    params = [W1.copy(), W2.copy()]
    moments = [[np.zeros_like(P), np.zeros_like(P)] for P in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    p = X.shape[0]
    for step in range(1, max_steps + 1):
        A, B = params
        H = X @ A.T
        m = np.einsum("mkd,md->mk", D, H @ B.T)
        if step % check_every == 1 and m.min() > 0:
            if two_layer_margins(A, B, X, D).min() > 0:
                return A, B, True
        shift = np.minimum(m.min(axis=1, keepdims=True), 0.0)
        e = np.exp(-(m - shift))
        w = e / (np.exp(shift) + e.sum(axis=1, keepdims=True))  # d loss / d(-m)
        # dL/dW = -(1/p) sum_{mu k} w D x^T, W = B A.
        G = -np.einsum("mk,mkd->dm", w, D) @ X / p
        grads = [B.T @ G, G @ A.T]
        for P, g, mom in zip(params, grads, moments, strict=True):
            mom[0] = b1 * mom[0] + (1 - b1) * g
            mom[1] = b2 * mom[1] + (1 - b2) * g * g
            mhat = mom[0] / (1 - b1**step)
            vhat = mom[1] / (1 - b2**step)
            P -= lr * mhat / (np.sqrt(vhat) + eps)
    A, B = params
    return A, B, bool(two_layer_margins(A, B, X, D).min() > 0)


def train_two_layer(
    X,
    Y,
    n_hidden: int,
    *,
    competitors=None,
    method: str = "both",
    n_starts: int = 3,
    W1_init=None,
    solver: str = "auto",
    certificate_tol: float = CERTIFICATE_TOL,
    n_rounds: int = 4,
    max_steps: int = 3000,
    learning_rate: float = 0.02,
    C: float = 10.0,
    random_state=None,
) -> TwoLayerResult:
    r"""Search for a two-layer memory ``W2 W1`` of hidden width k storing the set.

    Parameters
    ----------
    X, Y : array-like of shape (p, d)
        Inputs and targets.
    n_hidden : int
        Hidden width k >= 1.
    competitors : array-like of shape (p, K, d), default=None
        Private competitors (decoupled set); None for the coupled set.
    method : {"both", "alternating", "gradient"}, default="both"
        Search method. ``"alternating"``: from each start, alternate the two
        convex sub-problems (see Notes). ``"gradient"``: Adam on the softmax
        cross-entropy from each start. ``"both"``: for each start, gradient
        first, then alternating from where it ended.
    n_starts : int, default=3
        Starts: start 0 uses ``W1_init`` (or a random first layer), the
        others random first layers (and random second layers for the
        gradient method).
    W1_init : array-like of shape (k, d), default=None
        First layer of start 0, e.g. the frozen layer of an instance.
    solver : {"auto", "IPM", "ECOS", "CLARABEL", "HIGHS", "SCS"}, default="auto"
        Solvers of the convex sub-problems.
    certificate_tol : float, default=1e-8
        Passed to the exact sub-problem decisions.
    n_rounds : int, default=4
        Alternations per start, at least one (zero would leave the
        alternating search only its first, frozen step: use
        :func:`check_frozen_storage` or ``method="gradient"`` for that).
    max_steps : int, default=3000
        Adam steps per start.
    learning_rate : float, default=0.02
        Adam step size.
    C : float, default=10.0
        Slack cost of the soft-margin sub-problems (data rescaled to unit
        root-mean-square rows).
    random_state : None, int, Generator or SeedSequence, default=None

    Returns
    -------
    result : TwoLayerResult

    Notes
    -----
    With ``W1`` fixed the margins ``D_{mu k}^T W2 (W1 x_mu)`` are linear in
    ``W2``; with ``W2`` fixed they are ``(W2^T D_{mu k})^T W1 x_mu``, linear
    in ``W1``. Each alternation first decides the sub-problem exactly (the
    scale-free program); if the layer alone can store the set, the search
    stops with that pair, otherwise the layer is replaced by the soft-margin
    solution of its sub-problem. Start 0's first step is exactly the
    frozen-layer problem, so whenever ``W1_init`` stores the set with a
    trained second layer, so does this search. A pair counts as storing only
    when :func:`two_layer_margins` proves every margin positive. The search
    is a heuristic for a non-convex problem: ``stored=False`` is not a proof
    that no pair exists.

    Examples
    --------
    >>> from assoc_cvx import make_associations
    >>> from assoc_cvx.two_layer import train_two_layer
    >>> X, Y = make_associations(10, 6, random_state=0)
    >>> train_two_layer(X, Y, 4, random_state=0).stored
    True
    """
    X, Y, competitors = _validated(X, Y, competitors)
    d_in, d_out = X.shape[1], Y.shape[1]
    k = check_int(n_hidden, "n_hidden")
    check_option(method, "method", METHODS)
    n_starts = check_int(n_starts, "n_starts")
    n_rounds = check_int(n_rounds, "n_rounds")
    max_steps = check_int(max_steps, "max_steps", minimum=0)
    learning_rate = check_positive(learning_rate, "learning_rate")
    C = check_positive(C, "C")
    certificate_tol = check_positive(certificate_tol, "certificate_tol")
    solvers = resolve_solvers(solver)
    rng = as_generator(random_state)
    if W1_init is not None:
        W1_init = check_matrix(
            W1_init, "W1_init", (k, d_in), what="n_hidden rows, as many columns as X"
        )
    D = difference_tensor(Y, competitors)
    t0 = time.perf_counter()
    best = (-np.inf, None, None)
    for start in range(n_starts):
        if start == 0 and W1_init is not None:
            W1 = W1_init.copy()
        else:
            W1 = rng.standard_normal((k, d_in)) / math.sqrt(d_in)
        W2 = rng.standard_normal((d_out, k)) / math.sqrt(k)
        if method != "gradient":
            # The frozen step: exact, and the reason (b) >= (a).
            res = decide(
                X @ W1.T,
                D,
                solvers=solvers,
                constraints="",
                certificate_tol=certificate_tol,
            )
            if res.stored and two_layer_margins(W1, res.W, X, D).min() > 0:
                return _result(True, W1, res.W, "frozen", start, X, D, t0)
        if method != "alternating":
            W1, W2, found = _adam_cross_entropy(
                W1, W2, X, D, max_steps=max_steps, lr=learning_rate, check_every=25
            )
            if found:
                return _result(True, W1, W2, "gradient", start, X, D, t0)
        if method != "gradient":
            W1, W2, found = _alternate(W1, X, D, solvers, certificate_tol, n_rounds, C)
            if found and two_layer_margins(W1, W2, X, D).min() > 0:
                return _result(True, W1, W2, "alternating", start, X, D, t0)
        score = _normalised_min(W1, W2, X, D)
        if score > best[0]:
            best = (score, W1, W2)
    _, W1, W2 = best
    if W1 is None:
        W1, W2 = np.zeros((k, d_in)), np.zeros((d_out, k))
    return _result(False, W1, W2, None, None, X, D, t0)


def _result(stored, W1, W2, method, start, X, D, t0):
    return TwoLayerResult(
        stored=stored,
        W1=W1,
        W2=W2,
        method=method,
        start=start,
        margin=_normalised_min(W1, W2, X, D),
        elapsed=time.perf_counter() - t0,
    )


class _HiddenPool:
    """A nested pool seen through a frozen first layer: inputs ``W1 x``."""

    def __init__(self, pool, W1):
        self.pool, self.W1 = pool, W1
        self.constraints = pool.constraints
        self.n_features = pool.n_features

    def __call__(self, n_patterns):
        X, Y, Z = self.pool(n_patterns)
        return X @ self.W1.T, Y, Z


def _instance_first_layer(pool, k):
    """The frozen first layer of an instance, from its own child seed."""
    rng = pool._child(3, 0)
    return rng.standard_normal((k, pool.n_features)) / math.sqrt(pool.n_features)


@dataclass(frozen=True)
class TwoLayerInstance:
    """Two-layer capacities of one nested instance.

    Attributes
    ----------
    index : int
    frozen : int or None
        Exact critical p with the frozen first layer (None if undecided).
    one_layer : int or None
        Exact critical p of one layer (``mode="trained"`` only).
    trained : int or None
        Largest p at which a trained pair was found (a lower bound on the
        critical p of the trained model; ``mode="trained"`` only).
    trained_method : str or None
        How the pair at ``trained`` was found.
    trained_failed_at : int or None
        The p at which the search first failed (nothing proved there).
    solve_time : float
        Seconds.
    """

    index: int
    frozen: int | None
    one_layer: int | None = None
    trained: int | None = None
    trained_method: str | None = None
    trained_failed_at: int | None = None
    solve_time: float = 0.0


@dataclass(frozen=True)
class TwoLayerCapacity:
    """Outcome of :func:`find_two_layer_capacity`.

    Attributes
    ----------
    n_features, n_hidden : int
        d and k.
    hidden_ratio : float
        beta = k / d as requested.
    mode : {"frozen", "trained"}
    constraints, distribution : str
    entropy : int
        Root seed of the run.
    instances : tuple of TwoLayerInstance
    frozen, trained, one_layer : float
        Medians over instances with a value (NaN if none): exact frozen-layer
        capacity, lower bound for the trained model, exact one-layer
        capacity.
    beta_law : float
        The p solving ``p log p / d^2 = beta / 2`` (asymptotic frozen law).
    elapsed : float
    """

    n_features: int
    n_hidden: int
    hidden_ratio: float
    mode: str
    constraints: str
    distribution: str
    entropy: int
    instances: tuple
    frozen: float
    trained: float
    one_layer: float
    beta_law: float
    elapsed: float

    def summary(self) -> dict:
        """Headline numbers as plain Python values."""
        return {
            "n_features": self.n_features,
            "n_hidden": self.n_hidden,
            "hidden_ratio": self.hidden_ratio,
            "mode": self.mode,
            "constraints": self.constraints,
            "distribution": self.distribution,
            "entropy": self.entropy,
            "n_instances": len(self.instances),
            "frozen": _plain(self.frozen),
            "trained": _plain(self.trained),
            "one_layer": _plain(self.one_layer),
            "beta_law": self.beta_law,
            "elapsed": self.elapsed,
        }


def _plain(x):
    return None if x is None or np.isnan(x) else float(x)


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else np.nan


def _beta_law(d, beta):
    """p solving ``p log p / d^2 = beta / 2``, i.e. ``p log p = d k / 2``."""
    from scipy.special import lambertw

    c = beta * d * d / 2.0
    return float(c / lambertw(c).real) if c > 0 else np.nan


def _two_layer_instance(index, pool, k, mode, solvers, tol, p_max, search):
    """Frozen critical p, and for ``mode="trained"`` the trained search."""
    d = pool.n_features
    W1 = _instance_first_layer(pool, k)
    guess = max(2, round(_GUESS_FACTOR * asymptotic_capacity(d) * min(1.0, k / d)))
    guess = min(guess, p_max)
    t0 = time.perf_counter()
    frozen = _bisect(index, _HiddenPool(pool, W1), solvers, tol, guess, p_max, {})
    if mode == "frozen":
        return TwoLayerInstance(
            index, frozen.critical_p, solve_time=time.perf_counter() - t0
        )
    guess = min(max(2, round(_GUESS_FACTOR * asymptotic_capacity(d))), p_max)
    one = _bisect(index, pool, solvers, tol, guess, p_max, {})
    lo = frozen.lower
    top = one.critical_p if one.critical_p is not None else (one.upper or p_max + 1) - 1
    method, failed = "frozen", None
    rng = np.random.default_rng(pool._child(4, 0).integers(2**63))
    with threadpool_limits(limits=1):
        for p in range(lo + 1, top + 1):
            X, Y, Z = pool(p)
            res = train_two_layer(
                X, Y, k, competitors=Z, W1_init=W1, random_state=rng, **search
            )
            if not res.stored:
                failed = p
                break
            lo, method = p, res.method
    return TwoLayerInstance(
        index,
        frozen.critical_p,
        one_layer=one.critical_p,
        trained=lo,
        trained_method=method,
        trained_failed_at=failed,
        solve_time=time.perf_counter() - t0,
    )


def find_two_layer_capacity(
    n_features: int,
    hidden_ratio: float,
    *,
    mode: str = "frozen",
    constraints: str = "coupled",
    n_instances: int = 10,
    random_state=None,
    n_jobs: int | None = None,
    distribution: str = "gaussian",
    solver: str = "auto",
    certificate_tol: float = CERTIFICATE_TOL,
    p_max: int | None = None,
    n_starts: int = 3,
    method: str = "both",
    max_steps: int = 3000,
    callback=None,
) -> TwoLayerCapacity:
    r"""Capacity of random two-layer memories of hidden width ``k = beta d``.

    Parameters
    ----------
    n_features : int
        Dimension d of inputs and targets.
    hidden_ratio : float
        beta > 0; the hidden width is ``k = max(1, round(beta d))``.
    mode : {"frozen", "trained"}, default="frozen"
        ``"frozen"``: the exact critical p of each nested instance with its
        own random first layer (bisection, as in :func:`find_capacity`).
        ``"trained"``: also the exact one-layer critical p, and a lower bound
        for the trained model: starting one above the frozen critical p, p is
        raised one at a time while :func:`train_two_layer` (from the frozen
        layer and ``n_starts - 1`` random starts) finds a storing pair; the
        last success is the bound. A success at p proves storage at every
        smaller p of the nested instance.
    constraints : {"coupled", "decoupled"}, default="coupled"
    n_instances : int, default=10
    random_state : None, int, ... default=None
        Root seed; as in :func:`find_capacity`.
    n_jobs : int, default=None
        Instances in parallel (joblib).
    distribution : {"gaussian", "sphere"}, default="gaussian"
    solver : str, default="auto"
    certificate_tol : float, default=1e-8
    p_max : int, default=None
        Largest p tried; default ``2 d^2 + 2``.
    n_starts, method, max_steps
        Passed to :func:`train_two_layer` (``mode="trained"``).
    callback : callable, default=None
        Called with each :class:`TwoLayerInstance` as it finishes.

    Returns
    -------
    result : TwoLayerCapacity

    Notes
    -----
    Per instance, ``frozen <= trained <= one_layer`` holds by construction:
    the search's first step is the frozen problem with the same layer, and a
    rank-k product is a one-layer memory, so the search never goes past the
    one-layer critical p. The frozen capacity is compared with the asymptotic
    law ``p log p / d^2 -> beta / 2`` (arXiv 2605.10795), which, like the
    one-layer law, is approached only logarithmically slowly.

    Examples
    --------
    >>> from assoc_cvx.two_layer import find_two_layer_capacity
    >>> res = find_two_layer_capacity(4, 0.5, n_instances=2, random_state=0)
    >>> res.n_hidden, len(res.instances)
    (2, 2)
    """
    d = check_int(n_features, "n_features")
    k = hidden_width(d, hidden_ratio)
    check_option(mode, "mode", MODES)
    check_option(constraints, "constraints", CONSTRAINT_SETS)
    check_option(distribution, "distribution", DISTRIBUTIONS)
    check_option(method, "method", METHODS)
    n_instances = check_int(n_instances, "n_instances")
    solvers = resolve_solvers(solver)
    certificate_tol = check_positive(certificate_tol, "certificate_tol")
    p_max = 2 * d * d + 2 if p_max is None else check_int(p_max, "p_max", minimum=2)
    _check_n_jobs(n_jobs)
    search = {
        "n_starts": check_int(n_starts, "n_starts"),
        "method": method,
        "max_steps": check_int(max_steps, "max_steps", minimum=0),
        "solver": solver,
        "certificate_tol": certificate_tol,
    }
    entropy = _entropy(random_state)
    seeds = _instance_seeds(entropy, n_instances)
    start = time.perf_counter()
    jobs = [
        (i, NestedPool(d, constraints, distribution, seeds[i]), k, mode, solvers)
        for i in range(n_instances)
    ]
    workers = min(effective_n_jobs(n_jobs), n_instances)
    results = {}
    for out in Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(_two_layer_instance)(*job, certificate_tol, p_max, search)
        for job in jobs
    ):
        results[out.index] = out
        if callback is not None:
            callback(out)
    instances = tuple(results[i] for i in range(n_instances))
    return TwoLayerCapacity(
        n_features=d,
        n_hidden=k,
        hidden_ratio=float(hidden_ratio),
        mode=mode,
        constraints=constraints,
        distribution=distribution,
        entropy=entropy,
        instances=instances,
        frozen=_median([r.frozen for r in instances]),
        trained=_median([r.trained for r in instances]),
        one_layer=_median([r.one_layer for r in instances]),
        beta_law=_beta_law(d, k / d),
        elapsed=time.perf_counter() - start,
    )
