"""Random associations, competitors and nested instances."""

from numbers import Integral

import numpy as np

from assoc_cvx._validation import check_int, check_option

__all__ = [
    "DISTRIBUTIONS",
    "NestedPool",
    "as_generator",
    "make_associations",
    "make_competitors",
]

DISTRIBUTIONS = ("gaussian", "sphere")


def as_generator(random_state):
    """Turn ``random_state`` into a :class:`numpy.random.Generator`.

    Accepts None (fresh entropy), an int seed, a SeedSequence, a Generator
    (used as is) or a legacy RandomState (a seed is drawn from it).
    """
    if isinstance(random_state, bool):
        raise TypeError(f"random_state must not be a bool; got {random_state!r}.")
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31 - 1))
    if random_state is None or isinstance(
        random_state, Integral | np.random.SeedSequence | np.random.Generator
    ):
        if isinstance(random_state, Integral) and random_state < 0:
            raise ValueError(f"random_state must be >= 0; got {random_state}.")
        return np.random.default_rng(random_state)
    raise TypeError(
        "random_state must be None, an int, a numpy SeedSequence, Generator or "
        f"RandomState; got {type(random_state).__name__}."
    )


def _draw(rng, shape, distribution):
    a = rng.standard_normal(shape)
    d = shape[-1]
    if distribution == "gaussian":
        return a / np.sqrt(d)
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


def make_associations(
    n_patterns: int,
    n_features: int,
    *,
    distribution: str = "gaussian",
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw random input and target patterns.

    Parameters
    ----------
    n_patterns : int
        Number of associations p, at least 1.
    n_features : int
        Dimension d of inputs and targets, at least 1.
    distribution : {"gaussian", "sphere"}, default="gaussian"
        ``"gaussian"``: i.i.d. entries N(0, 1/d), so rows have norm close to 1.
        ``"sphere"``: rows uniform on the unit sphere.
    random_state : None, int, numpy.random.Generator or SeedSequence, default=None
        Source of randomness; an int gives reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_patterns, n_features)
        Inputs, one per row.
    Y : ndarray of shape (n_patterns, n_features)
        Targets; row mu is the target of input mu.

    Examples
    --------
    >>> from assoc_cvx import make_associations
    >>> X, Y = make_associations(5, 3, random_state=0)
    >>> X.shape, Y.shape
    ((5, 3), (5, 3))
    """
    p = check_int(n_patterns, "n_patterns")
    d = check_int(n_features, "n_features")
    check_option(distribution, "distribution", DISTRIBUTIONS)
    rng = as_generator(random_state)
    X = _draw(rng, (p, d), distribution)
    Y = _draw(rng, (p, d), distribution)
    return X, Y


def make_competitors(
    n_patterns: int,
    n_features: int,
    *,
    n_competitors: int | None = None,
    distribution: str = "gaussian",
    random_state=None,
) -> np.ndarray:
    """Draw private competitor targets for the decoupled constraint set.

    Parameters
    ----------
    n_patterns : int
        Number of inputs p, at least 2 when ``n_competitors`` is None.
    n_features : int
        Dimension d of the targets.
    n_competitors : int, default=None
        Competitors K per input; None means ``n_patterns - 1``, as many as the
        coupled constraint set has.
    distribution : {"gaussian", "sphere"}, default="gaussian"
        Distribution of each competitor, as in :func:`make_associations`.
    random_state : None, int, numpy.random.Generator or SeedSequence, default=None
        Source of randomness.

    Returns
    -------
    Z : ndarray of shape (n_patterns, n_competitors, n_features)
        ``Z[mu, k]`` is the k-th competitor of input mu.

    Examples
    --------
    >>> from assoc_cvx import make_competitors
    >>> make_competitors(4, 3, random_state=0).shape
    (4, 3, 3)
    """
    p = check_int(n_patterns, "n_patterns")
    d = check_int(n_features, "n_features")
    if n_competitors is None:
        if p < 2:
            raise ValueError(
                "n_competitors defaults to n_patterns - 1, which needs "
                f"n_patterns >= 2; got n_patterns={p}."
            )
        n_competitors = p - 1
    k = check_int(n_competitors, "n_competitors")
    check_option(distribution, "distribution", DISTRIBUTIONS)
    return _draw(as_generator(random_state), (p, k, d), distribution)


class NestedPool:
    """A pool of patterns whose first p rows form the instance at p.

    Every row (and every input's competitor list) comes from its own child of
    ``seed``, so the instance at p is a prefix of the instance at p + 1 and
    does not depend on how far the pool has been grown: the constraint set at
    p is a subset of the one at p + 1, which makes storability monotone in p.

    Parameters
    ----------
    n_features : int
        Dimension d.
    constraints : {"coupled", "decoupled"}
        Whether competitors are drawn (decoupled) or are the other targets.
    distribution : {"gaussian", "sphere"}
        Pattern distribution.
    seed : numpy.random.SeedSequence
        Root of the instance.
    """

    def __init__(self, n_features, constraints, distribution, seed):
        self.n_features = n_features
        self.constraints = constraints
        self.distribution = distribution
        self.seed = seed
        self._rows = {0: [], 1: []}
        self._competitors = []

    def _child(self, *key):
        return np.random.default_rng(
            np.random.SeedSequence(
                self.seed.entropy, spawn_key=(*self.seed.spawn_key, *key)
            )
        )

    def _grow_rows(self, which, p):
        rows = self._rows[which]
        for mu in range(len(rows), p):
            rows.append(
                _draw(self._child(which, mu), (self.n_features,), self.distribution)
            )
        return np.array(rows[:p])

    def __call__(self, n_patterns):
        """Return ``(X, Y, Z)`` of the instance with ``n_patterns`` patterns.

        ``Z`` is None for the coupled constraint set, else of shape
        (n_patterns, n_patterns - 1, n_features).
        """
        p = n_patterns
        X = self._grow_rows(0, p)
        Y = self._grow_rows(1, p)
        if self.constraints == "coupled":
            return X, Y, None
        k = p - 1
        Z = np.empty((p, k, self.n_features))
        for mu in range(p):
            if mu >= len(self._competitors) or len(self._competitors[mu]) < k:
                block = _draw(
                    self._child(2, mu), (k, self.n_features), self.distribution
                )
                if mu < len(self._competitors):
                    self._competitors[mu] = block
                else:
                    self._competitors.append(block)
            Z[mu] = self._competitors[mu][:k]
        return X, Y, Z
