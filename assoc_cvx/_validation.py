"""Input checks shared by the public functions."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

__all__ = [
    "MAX_ABS",
    "MIN_ABS",
    "check_bool",
    "check_competitors",
    "check_int",
    "check_matrix",
    "check_option",
    "check_patterns",
    "check_positive",
    "check_real",
    "check_row_scale",
    "first_row_out_of_range",
    "rms_row_norm",
]

#: Nonzero rows of patterns must have their largest entry in [MIN_ABS, MAX_ABS]
#: so that every margin, and the max-margin W, stays a normal float64.
MIN_ABS = 1e-100
MAX_ABS = 1e100


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


def check_bool(value, name):
    """Return ``value`` as a bool, or raise unless it is True or False."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{name} must be True or False; got {value!r} of type "
            f"{type(value).__name__}."
        )
    return bool(value)


def check_positive(value, name):
    """Return ``value`` as a float, or raise unless it is a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a positive finite number; got {value!r} "
            f"of type {type(value).__name__}."
        )
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")
    return float(value)


def _bound_text(low, high, low_open, high_open):
    """``" in [low, high]"``, ``" >= low"`` and so on; infinite ends omitted."""
    if low is not None and np.isneginf(low):
        low = None
    if high is not None and np.isposinf(high):
        high = None
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    if low is not None and high is not None:
        return f" in {lo}{float(low)!r}, {float(high)!r}{hi}"
    if low is not None:
        return f" {'>' if low_open else '>='} {float(low)!r}"
    if high is not None:
        return f" {'<' if high_open else '<='} {float(high)!r}"
    return ""


def check_real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float, or raise unless it is a finite real in range.

    ``low`` and ``high`` (None for no bound) are included unless ``low_open``
    or ``high_open``. Bools and strings are refused with a TypeError.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number; got {value!r} of type "
            f"{type(value).__name__}."
        )
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise ValueError(
            f"{name} must be a finite number"
            f"{_bound_text(low, high, low_open, high_open)}; got {value!r}."
        )
    return value


def check_option(value, name, options):
    """Raise unless ``value`` is one of the strings in ``options``."""
    if not isinstance(value, str) or value not in options:
        valid = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {valid}; got {value!r}.")
    return value


def _finite_float_array(a, name, ndim):
    if sp.issparse(a):
        raise TypeError(
            f"{name} must be a dense array; got a sparse {type(a).__name__} "
            "(convert it with .toarray())."
        )
    try:
        arr = np.asarray(a)
        if np.iscomplexobj(arr):
            raise TypeError(f"{name} must be real; got complex values.")
        arr = np.asarray(arr, dtype=np.float64)
    except (ValueError, OverflowError) as exc:
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array; got an array of shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def rms_row_norm(A):
    """Root-mean-square norm of the rows (last axis) of ``A``; one if all zero.

    Computed on ``A`` divided by its largest entry, so that it neither over-
    nor underflows.
    """
    peak = float(np.max(np.abs(A), initial=0.0))
    if peak == 0:
        return 1.0
    B = A / peak
    return peak * float(np.sqrt(np.mean(np.sum(B * B, axis=-1))))


def first_row_out_of_range(A, low=MIN_ABS, high=MAX_ABS):
    """Locate the first nonzero row whose largest entry is out of range.

    Rows run along the last axis of ``A``. Returns ``(index, largest |entry|)``
    for the first nonzero row whose largest absolute entry is outside
    [low, high], or None if there is none.
    """
    peak = np.max(np.abs(A), axis=-1, initial=0.0)
    bad = (peak > 0) & ((peak < low) | (peak > high))
    if not np.any(bad):
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return index, float(peak[index])


def check_row_scale(A, name):
    """Raise if a nonzero row of ``A`` has entries too small or too large.

    Storage does not depend on the scale of the patterns, but margins of
    patterns near the ends of the float64 range under- or overflow.
    """
    found = first_row_out_of_range(A)
    if found is not None:
        raise ValueError(
            f"{name} has a row whose largest entry is {found[1]:.3g}, outside "
            f"[{MIN_ABS:g}, {MAX_ABS:g}]; rescale it (storage does not depend "
            "on the scale of a pattern)."
        )
    return A


def check_patterns(X, Y, *, same_width=True):
    """Validate inputs ``X`` and targets ``Y``, both of shape (p, d).

    With ``same_width=False``, Y may have another number of columns than X
    (shapes (p, d_in) and (p, d_out)). Returns float64 arrays.
    """
    X = check_row_scale(_finite_float_array(X, "X", 2), "X")
    Y = check_row_scale(_finite_float_array(Y, "Y", 2), "Y")
    if same_width and X.shape != Y.shape:
        raise ValueError(
            "X and Y must have the same shape (n_patterns, n_features); "
            f"got X {X.shape} and Y {Y.shape}."
        )
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            "X and Y must have the same number of rows (n_patterns); "
            f"got X {X.shape} and Y {Y.shape}."
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


def check_matrix(W, name, shape, *, what=""):
    """Validate a finite real matrix of the given shape; return it in float64.

    Each entry of ``shape`` is a required size, or a string naming a free
    size, which must then be at least one (``("k", 4)``: any k >= 1 rows,
    4 columns). ``what`` says where the shape comes from, for the error
    message.
    """
    W = _finite_float_array(W, name, 2)
    fits = all(
        (n >= 1) if isinstance(want, str) else (n == want)
        for want, n in zip(shape, W.shape, strict=True)
    )
    if not fits:
        where = f" ({what})" if what else ""
        text = ", ".join(str(want) for want in shape)
        free = [want for want in shape if isinstance(want, str)]
        least = f" with {' and '.join(free)} >= 1" if free else ""
        raise ValueError(
            f"{name} must have shape ({text}){least}{where}; got {W.shape}."
        )
    return W


def check_competitors(Z, n_patterns, n_features):
    """Validate a competitor tensor of shape (n_patterns, K, n_features)."""
    Z = check_row_scale(_finite_float_array(Z, "competitors", 3), "competitors")
    if Z.shape[0] != n_patterns or Z.shape[2] != n_features or Z.shape[1] < 1:
        raise ValueError(
            "competitors must have shape (n_patterns, n_competitors, n_features) "
            f"= ({n_patterns}, K >= 1, {n_features}); got {Z.shape}."
        )
    return Z
