"""Input checks shared by the public functions."""

from numbers import Integral

import numpy as np

__all__ = ["check_competitors", "check_int", "check_option", "check_patterns"]


def check_int(value, name, *, minimum=1):
    """Return ``value`` as an int, or raise if it is not an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}; got {value!r} "
            f"of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}.")
    return int(value)


def check_option(value, name, options):
    """Raise unless ``value`` is one of the strings in ``options``."""
    if not isinstance(value, str) or value not in options:
        valid = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {valid}; got {value!r}.")
    return value


def _finite_float_array(a, name, ndim):
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array; got an array of shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def check_patterns(X, Y, *, same_shape=True):
    """Validate inputs ``X`` (p, d_in) and targets ``Y`` (p, d_out).

    Returns float64 copies-or-views. With ``same_shape`` the two must have the
    same shape, as in the square storage problem.
    """
    X = _finite_float_array(X, "X", 2)
    Y = _finite_float_array(Y, "Y", 2)
    if same_shape and X.shape != Y.shape:
        raise ValueError(
            "X and Y must have the same shape (n_patterns, n_features); "
            f"got X {X.shape} and Y {Y.shape}."
        )
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            "X and Y must have the same number of rows (patterns); "
            f"got {X.shape[0]} and {Y.shape[0]}."
        )
    if X.shape[0] < 2:
        raise ValueError(
            f"At least 2 patterns are needed to compare targets; got {X.shape[0]}."
        )
    if X.shape[1] < 1 or Y.shape[1] < 1:
        raise ValueError(
            f"X and Y need at least one feature; got X {X.shape} and Y {Y.shape}."
        )
    return X, Y


def check_competitors(Z, n_patterns, n_features):
    """Validate a competitor tensor of shape (n_patterns, K, n_features)."""
    Z = _finite_float_array(Z, "competitors", 3)
    if Z.shape[0] != n_patterns or Z.shape[2] != n_features or Z.shape[1] < 1:
        raise ValueError(
            "competitors must have shape (n_patterns, n_competitors, n_features) "
            f"= ({n_patterns}, K >= 1, {n_features}); got {Z.shape}."
        )
    return Z
