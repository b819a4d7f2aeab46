r"""Learning rules that are not feasibility programs, and recall checks in numpy.

A rule maps associations to a matrix W; whether W stores them is then checked
directly on the scores ``y^T W x`` in float64. Unlike the max-margin program
of :func:`assoc_cvx.check_storage`, a rule that fails proves nothing about
whether some other W would succeed.
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from assoc_cvx._validation import check_int, check_option, check_positive
from assoc_cvx.patterns import as_generator

__all__ = [
    "LEARNING_RULES",
    "OPTIMIZERS",
    "GradientResult",
    "check_rule_params",
    "fit_rule",
    "gradient_weights",
    "hebbian_weights",
    "pseudo_inverse_weights",
    "recall_margins",
    "recalled",
]

logger = logging.getLogger(__name__)

#: Rules that are computed, not decided: their capacity is only a lower bound.
LEARNING_RULES = ("hebbian", "pseudo_inverse", "gradient")
#: Optimisers of ``rule="gradient"``.
OPTIMIZERS = ("adam", "sgd")
#: Defaults of the gradient rule's settings (see :func:`gradient_weights`).
GRADIENT_DEFAULTS = {
    "optimizer": "adam",
    "learning_rate": 0.1,
    "max_iter": 4000,
    "tol": 1e-8,
    "momentum": 0.9,
    "early_stopping": True,
    "random_state": 0,
}


@dataclass(frozen=True)
class GradientResult:
    """Outcome of :func:`gradient_weights`.

    Attributes
    ----------
    W : ndarray of shape (n_targets, n_features)
        The trained matrix.
    n_iter : int
        Gradient steps taken.
    loss : float
        Mean softmax cross-entropy at ``W``.
    stop : {"recalled", "tol", "max_iter"}
        Why training stopped: every association recalled strictly (with
        ``early_stopping``), the largest gradient entry fell below ``tol``,
        or the step budget ran out.
    fit_time : float
        Seconds of training.
    """

    W: np.ndarray
    n_iter: int
    loss: float
    stop: str
    fit_time: float


def hebbian_weights(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    r"""The Hebbian (outer-product) matrix ``W = sum_mu y_mu x_mu^T``.

    Parameters
    ----------
    X : ndarray of shape (p, n_features)
        Inputs.
    Y : ndarray of shape (p, n_targets)
        Targets.

    Returns
    -------
    W : ndarray of shape (n_targets, n_features)
        :math:`Y^\top X`.
    """
    return Y.T @ X


def pseudo_inverse_weights(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    r"""Least-squares matrix whose score matrix is closest to the identity.

    Parameters
    ----------
    X : ndarray of shape (p, n_features)
        Inputs.
    Y : ndarray of shape (p, n_targets)
        Targets.

    Returns
    -------
    W : ndarray of shape (n_targets, n_features)
        :math:`W = Y^+ (X^+)^\top`.

    Notes
    -----
    The scores are :math:`S = X W^\top Y^\top` (:math:`S_{\mu\nu} =
    y_\nu^\top W x_\mu`); the minimum-norm minimiser of
    :math:`\lVert X W^\top Y^\top - I \rVert_F` is :math:`W^\top = X^+
    (Y^\top)^+`. For p <= d generic patterns give S = I exactly, so every
    association is recalled; beyond, S is the product of two rank-d
    projections and recall degrades.
    """
    return np.linalg.pinv(Y) @ np.linalg.pinv(X).T


def _scores(W, X, Y, competitors):
    """Correct scores (p,) and competitor scores (p, K)."""
    T = X @ W.T  # row mu is W x_mu
    if competitors is None:
        S = T @ Y.T
        p = S.shape[0]
        correct = S[np.arange(p), np.arange(p)]
        others = S[~np.eye(p, dtype=bool)].reshape(p, p - 1)
        return correct, others
    correct = np.einsum("md,md->m", T, Y)
    return correct, np.einsum("mkd,md->mk", competitors, T)


def recall_margins(W, X, Y, competitors=None):
    """Recall margins and their float64 rounding bounds.

    Parameters
    ----------
    W : ndarray of shape (n_targets, n_features)
    X : ndarray of shape (p, n_features)
    Y : ndarray of shape (p, n_targets)
    competitors : ndarray of shape (p, K, n_targets), default=None
        None: the competitors of input mu are the other targets (coupled).

    Returns
    -------
    margin : ndarray of shape (p,)
        Correct score minus the largest competitor score, per input
        (``+inf`` with no competitor).
    bound : ndarray of shape (p,)
        A bound on the rounding error of ``margin``: twice
        ``(n_features + n_targets + 2)`` unit roundoffs times the largest
        absolute-value score ``|c|^T |W| |x|`` of that input.
    """
    correct, others = _scores(W, X, Y, competitors)
    abs_correct, abs_others = _scores(np.abs(W), np.abs(X), np.abs(Y), competitors)
    if others.shape[1] == 0:
        return np.full(correct.shape, np.inf), np.zeros(correct.shape)
    margin = correct - others.max(axis=1)
    scale = np.maximum(abs_correct, abs_others.max(axis=1))
    n_terms = X.shape[1] + Y.shape[1] + 2
    return margin, 2 * n_terms * np.finfo(float).eps * scale


def recalled(W, X, Y, competitors=None) -> np.ndarray:
    """Which associations W recalls strictly, beyond float64 rounding.

    Parameters
    ----------
    W, X, Y, competitors
        As in :func:`recall_margins`.

    Returns
    -------
    mask : ndarray of bool, shape (p,)
        True where the correct score exceeds every competitor score by more
        than the rounding bound of :func:`recall_margins`.
    """
    margin, bound = recall_margins(W, X, Y, competitors)
    return margin > bound


def _check_real(value, name, *, low=0.0, high=np.inf, low_open=True):
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number; got {value!r} of type "
            f"{type(value).__name__}."
        )
    value = float(value)
    ok = np.isfinite(value) and (value > low if low_open else value >= low)
    if not ok or value > high:
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be in {lo}{low:g}, {high:g}]; got {value!r}.")
    return value


def check_rule_params(params, owner="gradient_weights"):
    """Validate the settings of the gradient rule; return them with defaults.

    Parameters
    ----------
    params : dict or None
        Any of the keys of :data:`GRADIENT_DEFAULTS` (a mapping).
    owner : str
        Name used in error messages.

    Returns
    -------
    params : dict
        Every setting, validated.

    Raises
    ------
    TypeError
        When ``params`` is not a mapping or None, or a setting has the wrong
        type.
    ValueError
        For an unknown setting or a value out of range.
    """
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(
            f"{owner} must be a dict of gradient settings or None; got {params!r} "
            f"of type {type(params).__name__}."
        )
    params = {} if params is None else dict(params)
    unknown = sorted(set(params) - set(GRADIENT_DEFAULTS))
    if unknown:
        raise ValueError(
            f"{owner} got unknown gradient settings {unknown}; valid ones are "
            f"{sorted(GRADIENT_DEFAULTS)}."
        )
    out = {**GRADIENT_DEFAULTS, **params}
    check_option(out["optimizer"], f"{owner}: optimizer", OPTIMIZERS)
    check_positive(out["learning_rate"], f"{owner}: learning_rate")
    out["learning_rate"] = float(out["learning_rate"])
    out["max_iter"] = check_int(out["max_iter"], f"{owner}: max_iter")
    out["tol"] = _check_real(out["tol"], f"{owner}: tol", low_open=False)
    out["momentum"] = _check_real(
        out["momentum"], f"{owner}: momentum", low_open=False, high=0.999
    )
    if not isinstance(out["early_stopping"], bool | np.bool_):
        raise TypeError(
            f"{owner}: early_stopping must be a bool; got {out['early_stopping']!r}."
        )
    rs = out["random_state"]
    if rs is not None and not isinstance(rs, Integral | np.random.Generator):
        as_generator(rs)  # raises a TypeError naming the accepted types
    return out


def _softmax_rows(S):
    S = S - S.max(axis=1, keepdims=True)
    E = np.exp(S)
    return E / E.sum(axis=1, keepdims=True)


def gradient_weights(
    X: np.ndarray,
    Y: np.ndarray,
    competitors: np.ndarray | None = None,
    *,
    optimizer: str = "adam",
    learning_rate: float = 0.1,
    max_iter: int = 4000,
    tol: float = 1e-8,
    momentum: float = 0.9,
    early_stopping: bool = True,
    random_state=0,
) -> GradientResult:
    r"""Train W by full-batch gradient descent on softmax cross-entropy.

    Each input's logits are its scores against its candidates (its own
    target first, then its competitors) and the loss is the mean
    cross-entropy of the correct candidate, as language models are trained.

    Parameters
    ----------
    X : ndarray of shape (p, n_features)
        Inputs.
    Y : ndarray of shape (p, n_targets)
        Targets.
    competitors : ndarray of shape (p, K, n_targets), default=None
        None: the candidates of input mu are all p targets (coupled);
        otherwise its own target and ``competitors[mu]`` (decoupled).
    optimizer : {"adam", "sgd"}, default="adam"
        Adam (betas 0.9, 0.999, eps 1e-8) or gradient descent with heavy-ball
        ``momentum``.
    learning_rate : float, default=0.1
        Step size, positive. With Adam and patterns of unit norm, 0.1 came
        within a few patterns of the exact capacity at d = 10 (0.01: about
        20 % below it).
    max_iter : int, default=4000
        Largest number of full-batch steps.
    tol : float, default=1e-8
        Stop when the largest absolute entry of the gradient is at most this.
    momentum : float, default=0.9
        Heavy-ball momentum of ``"sgd"``, in [0, 0.999]; ignored by Adam.
    early_stopping : bool, default=True
        Stop at the first step at which every association is recalled
        strictly (see :func:`recalled`).
    random_state : None, int or Generator, default=0
        Seed of the initial W, i.i.d. normal with standard deviation
        ``1e-3 / sqrt(n_features)``.

    Returns
    -------
    result : GradientResult
        The trained W, steps taken, final loss and why training stopped.

    Notes
    -----
    With scores :math:`s_{\mu j} = c_{\mu j}^\top W x_\mu` over the
    candidates :math:`c_{\mu j}` (:math:`c_{\mu 0} = y_\mu`), the loss and
    its gradient are

    .. math::
        L(W) = -\frac{1}{p} \sum_\mu \log
        \frac{e^{s_{\mu 0}}}{\sum_j e^{s_{\mu j}}}, \qquad
        \nabla L = \frac{1}{p} \sum_{\mu, j}
        (\sigma_{\mu j} - \delta_{j 0})\, c_{\mu j} x_\mu^\top ,

    with :math:`\sigma` the softmax of each row of scores. A study of
    factual recall trains such memories with Adam for about 4000 full-batch
    steps and reports the largest p reaching 99 % recall (design notes §9).
    Training that does not reach storage proves nothing: some other W may
    store the associations.
    """
    settings = check_rule_params(
        {
            "optimizer": optimizer,
            "learning_rate": learning_rate,
            "max_iter": max_iter,
            "tol": tol,
            "momentum": momentum,
            "early_stopping": early_stopping,
            "random_state": random_state,
        }
    )
    start = time.perf_counter()
    p, n_features = X.shape
    n_targets = Y.shape[1]
    rng = as_generator(settings["random_state"])
    W = rng.standard_normal((n_targets, n_features)) * (1e-3 / np.sqrt(n_features))
    lr = settings["learning_rate"]
    m = np.zeros_like(W)
    v = np.zeros_like(W)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    rows = np.arange(p)
    stop = "max_iter"
    n_iter = 0
    loss = np.nan
    for step in range(1, settings["max_iter"] + 2):
        T = X @ W.T
        if competitors is None:
            S = T @ Y.T
            label = rows
        else:
            S = np.concatenate(
                [
                    np.einsum("md,md->m", T, Y)[:, None],
                    np.einsum("mkd,md->mk", competitors, T),
                ],
                axis=1,
            )
            label = np.zeros(p, dtype=int)
        shifted = S - S.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=1))
        loss = float(np.mean(log_z - shifted[rows, label]))
        if (
            settings["early_stopping"]
            and np.all(shifted[rows, label] >= shifted.max(axis=1))
            and np.all(recalled(W, X, Y, competitors))
        ):
            stop = "recalled"
            break
        if step > settings["max_iter"]:
            break
        G = _softmax_rows(S)
        G[rows, label] -= 1.0
        G /= p
        if competitors is None:
            dT = G @ Y
        else:
            dT = G[:, :1] * Y + np.einsum("mk,mkd->md", G[:, 1:], competitors)
        grad = dT.T @ X
        if np.max(np.abs(grad)) <= settings["tol"]:
            stop = "tol"
            break
        n_iter = step
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            if settings["optimizer"] == "adam":
                m = beta1 * m + (1 - beta1) * grad
                v = beta2 * v + (1 - beta2) * grad * grad
                m_hat = m / (1 - beta1**step)
                v_hat = v / (1 - beta2**step)
                W = W - lr * m_hat / (np.sqrt(v_hat) + eps)
            else:
                m = settings["momentum"] * m + grad
                W = W - lr * m
        if not np.all(np.isfinite(W)):
            raise FloatingPointError(
                f"gradient training diverged at step {step} (learning_rate={lr:g}); "
                "lower learning_rate."
            )
    return GradientResult(
        W=W,
        n_iter=n_iter,
        loss=loss,
        stop=stop,
        fit_time=time.perf_counter() - start,
    )


def fit_rule(rule, X, Y, competitors=None, params=None) -> np.ndarray:
    """The matrix a learning rule computes from associations.

    Parameters
    ----------
    rule : {"hebbian", "pseudo_inverse", "gradient"}
        Learning rule.
    X : ndarray of shape (p, n_features)
    Y : ndarray of shape (p, n_targets)
    competitors : ndarray of shape (p, K, n_targets), default=None
        Used by ``"gradient"`` only (its candidates); the other rules see
        only X and Y.
    params : dict, default=None
        Settings of ``"gradient"`` (see :func:`gradient_weights`).

    Returns
    -------
    W : ndarray of shape (n_targets, n_features)
    """
    check_option(rule, "rule", LEARNING_RULES)
    if rule == "hebbian":
        return hebbian_weights(X, Y)
    if rule == "pseudo_inverse":
        return pseudo_inverse_weights(X, Y)
    return gradient_weights(X, Y, competitors, **check_rule_params(params)).W
