r"""Mechanism of a fitted memory: scores, extreme values, support, spectrum.

For a memory W and its associations this module computes the quantities that
explain why the optimal W stores far more than the Hebbian one: the correct
score of each input against the largest of its competitor scores (in units
where ``||W||_F = d``, so that a competitor score of random patterns has
variance about one), a Gumbel fit of those maxima, the support constraints
of the max-margin W, and its singular values against the quarter-circle law.
Figures are :class:`matplotlib.figure.Figure` objects drawn without pyplot
(no window is ever opened); save them with ``fig.savefig(path)``.
"""

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from assoc_cvx._validation import (
    check_competitors,
    check_int,
    check_matrix,
    check_patterns,
    check_positive,
)
from assoc_cvx.programs import difference_tensor, margins

__all__ = [
    "ScoreAnalysis",
    "Spectrum",
    "SupportConstraints",
    "extreme_value_location",
    "plot_scores",
    "plot_spectrum",
    "pool_scores",
    "pool_spectra",
    "quarter_circle_cdf",
    "quarter_circle_pdf",
    "score_analysis",
    "singular_spectrum",
    "support_constraints",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreAnalysis:
    """Correct and competitor scores of a memory, with a Gumbel fit.

    Attributes
    ----------
    correct : ndarray of shape (p,)
        ``y_mu^T W x_mu`` with W scaled to ``||W||_F = d``.
    competitor_max : ndarray of shape (p,)
        Largest competitor score of each input, same scaling.
    gap : ndarray of shape (p,)
        ``correct - competitor_max``; positive exactly where input mu is
        recalled.
    gumbel_loc, gumbel_scale : float
        Maximum-likelihood Gumbel (``scipy.stats.gumbel_r``) fit of
        ``competitor_max``.
    extreme_value_level : float
        Gumbel location expected for the maximum of K independent standard
        normal scores (see :func:`extreme_value_location`).
    n_competitors : int
        Competitors per input, K.
    competitor_std : float
        Standard deviation of all competitor scores (about one for a random
        W); ``competitor_std * extreme_value_level`` is where the largest of
        K independent normal scores of that spread would sit.
    recall : float
        Fraction of inputs with a positive gap.
    """

    correct: np.ndarray
    competitor_max: np.ndarray
    gap: np.ndarray
    gumbel_loc: float
    gumbel_scale: float
    extreme_value_level: float
    n_competitors: int
    competitor_std: float
    recall: float


@dataclass(frozen=True)
class SupportConstraints:
    """Margin constraints that are active at the max-margin W.

    Attributes
    ----------
    mask : ndarray of bool, shape (p, K)
        ``mask[mu, k]``: the margin of competitor k of input mu is within the
        tolerance of the smallest margin.
    n_support : int
        Number of support constraints.
    per_input : ndarray of int, shape (p,)
        Support constraints of each input.
    fraction_inputs : float
        Fraction of inputs with at least one support constraint.
    n_weights : int
        Entries of W (d^2 for a square memory), for comparison with
        ``n_support``.
    """

    mask: np.ndarray
    n_support: int
    per_input: np.ndarray
    fraction_inputs: float
    n_weights: int


@dataclass(frozen=True)
class Spectrum:
    """Singular values of W against the quarter-circle law.

    Attributes
    ----------
    singular_values : ndarray of shape (min(W.shape),)
        In decreasing order, scaled to a mean square of one.
    ks_distance : float
        Kolmogorov-Smirnov distance between their empirical distribution
        and the quarter-circle law.
    condition_number : float
        Largest over smallest singular value (inf if W is singular).
    """

    singular_values: np.ndarray
    ks_distance: float
    condition_number: float


def extreme_value_location(n_competitors: int) -> float:
    r"""Gumbel location of the maximum of K independent standard normals.

    Parameters
    ----------
    n_competitors : int
        K >= 2.

    Returns
    -------
    b_K : float
        :math:`b_K = \sqrt{2 \ln K} - \frac{\ln \ln K + \ln 4\pi}
        {2 \sqrt{2 \ln K}}`, the classical normalising constant of normal
        maxima (the mode of the approximating Gumbel law), about
        :math:`\sqrt{2 \log K}` for large K (design notes §6).
    """
    K = check_int(n_competitors, "n_competitors", minimum=2)
    # math.log takes Python ints of any size (numpy's log does not).
    log_k = math.log(K)
    a = math.sqrt(2 * log_k)
    return a - (math.log(log_k) + math.log(4 * math.pi)) / (2 * a)


def quarter_circle_pdf(x):
    r"""Density of the quarter-circle law with unit mean square.

    :math:`f(x) = \sqrt{4 - x^2} / \pi` on [0, 2]: the limiting distribution
    of the singular values of a d x d matrix of i.i.d. entries, scaled to a
    mean square of one (Marchenko-Pastur at ratio one).
    """
    x = np.asarray(x, dtype=float)
    inside = (x >= 0) & (x <= 2)
    return np.where(inside, np.sqrt(np.clip(4 - x * x, 0, None)) / np.pi, 0.0)


def quarter_circle_cdf(x):
    r"""Distribution function of :func:`quarter_circle_pdf`.

    :math:`F(x) = \big(x \sqrt{4 - x^2} + 4 \arcsin(x / 2)\big) / (2\pi)`
    on [0, 2].
    """
    x = np.clip(np.asarray(x, dtype=float), 0, 2)
    return (x * np.sqrt(4 - x * x) + 4 * np.arcsin(x / 2)) / (2 * np.pi)


def _memory_matrix(memory):
    """The matrix W of a fitted memory or of a matrix: finite, real, 2-D.

    Raises sklearn's NotFittedError for an estimator that is not fitted; any
    other object with a ``coef_`` attribute is read through it.
    """
    if isinstance(memory, BaseEstimator):
        check_is_fitted(memory, "coef_")
    W = getattr(memory, "coef_", memory)
    return check_matrix(W, "W", ("n_targets", "n_features"))


def _unpack(memory, X, Y, competitors):
    """W, X, Y and competitors from a fitted memory or a matrix."""
    W = _memory_matrix(memory)
    if Y is None:
        Y = getattr(memory, "targets_", None)
    if Y is None:
        raise ValueError("Y is needed when memory is a matrix, not a fitted memory.")
    Y = np.asarray(Y)
    if Y.ndim == 1:
        Y = Y[:, None]
    X, Y = check_patterns(X, Y, same_width=False)
    if W.shape != (Y.shape[1], X.shape[1]):
        raise ValueError(
            "W must have shape (n_targets, n_features) matching Y and X; got W "
            f"{W.shape}, X {X.shape}, Y {Y.shape}."
        )
    if not np.any(W):
        raise ValueError("W must be finite and nonzero.")
    if competitors is not None:
        competitors = check_competitors(competitors, X.shape[0], Y.shape[1])
    elif len(X) < 3:
        raise ValueError(f"At least 3 associations are needed; got {len(X)}.")
    return W, X, Y, competitors


def _score_parts(W, X, Y, competitors):
    T = X @ W.T
    if competitors is None:
        S = T @ Y.T
        p = len(S)
        correct = np.diag(S).copy()
        others = S[~np.eye(p, dtype=bool)].reshape(p, p - 1)
    else:
        correct = np.einsum("md,md->m", T, Y)
        others = np.einsum("mkd,md->mk", competitors, T)
    return correct, others


def score_analysis(memory, X, Y=None, competitors=None) -> ScoreAnalysis:
    r"""Correct scores, largest competitor scores and their Gumbel fit.

    Parameters
    ----------
    memory : LinearAssociativeMemory or array-like of shape (n_targets, n_features)
        A fitted memory (its ``coef_``) or a matrix W.
    X : array-like of shape (p, n_features)
        Inputs.
    Y : array-like of shape (p, n_targets), default=None
        Targets; default the fitted ``targets_`` of ``memory``.
    competitors : array-like of shape (p, K, n_targets), default=None
        Private competitors (decoupled); None: the other targets (coupled).

    Returns
    -------
    analysis : ScoreAnalysis

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``memory`` is an estimator that has not been fitted.
    TypeError
        When W, X or Y is complex or not numeric.
    ValueError
        When W is zero, not finite or of the wrong shape, or X, Y or
        ``competitors`` is malformed.

    Notes
    -----
    W is rescaled to :math:`\lVert W \rVert_F = d` (d the number of
    targets), so for patterns with i.i.d. N(0, 1/d) entries a competitor
    score :math:`y^\top W x` has variance about
    :math:`\lVert W \rVert_F^2 / d^2 = 1` and the largest of K of them sits
    near :func:`extreme_value_location`. The optimal W pins the correct
    scores just above that level; Hebbian correct scores are broad
    (design notes §6).
    """
    W, X, Y, competitors = _unpack(memory, X, Y, competitors)
    W = W * (Y.shape[1] / np.linalg.norm(W))
    correct, others = _score_parts(W, X, Y, competitors)
    top = others.max(axis=1)
    loc, scale = stats.gumbel_r.fit(top)
    gap = correct - top
    K = others.shape[1]
    return ScoreAnalysis(
        correct=correct,
        competitor_max=top,
        gap=gap,
        gumbel_loc=float(loc),
        gumbel_scale=float(scale),
        extreme_value_level=extreme_value_location(K) if K >= 2 else float("nan"),
        n_competitors=K,
        competitor_std=float(np.std(others)),
        recall=float(np.mean(gap > 0)),
    )


def pool_scores(analyses) -> ScoreAnalysis:
    """Pool the score analyses of several memories (e.g. several instances).

    Parameters
    ----------
    analyses : sequence of ScoreAnalysis
        At least one.

    Returns
    -------
    pooled : ScoreAnalysis
        Concatenated scores and gaps, a Gumbel fit of all competitor maxima,
        and the mean of the extreme-value levels, competitor spreads and
        numbers of competitors (rounded) of the parts.
    """
    analyses = list(analyses)
    if not analyses:
        raise ValueError("Nothing to pool: no analysis given.")
    top = np.concatenate([a.competitor_max for a in analyses])
    gap = np.concatenate([a.gap for a in analyses])
    loc, scale = stats.gumbel_r.fit(top)
    return ScoreAnalysis(
        correct=np.concatenate([a.correct for a in analyses]),
        competitor_max=top,
        gap=gap,
        gumbel_loc=float(loc),
        gumbel_scale=float(scale),
        extreme_value_level=float(np.mean([a.extreme_value_level for a in analyses])),
        n_competitors=round(float(np.mean([a.n_competitors for a in analyses]))),
        competitor_std=float(np.mean([a.competitor_std for a in analyses])),
        recall=float(np.mean(gap > 0)),
    )


def support_constraints(memory, X, Y=None, competitors=None, *, tol=1e-6):
    r"""The support constraints of a max-margin W.

    Parameters
    ----------
    memory : LinearAssociativeMemory or array-like of shape (d, d)
        A memory fitted with ``rule="max_margin"`` (square, storing its
        associations) or its matrix.
    X, Y, competitors
        As in :func:`score_analysis`.
    tol : float, default=1e-6
        Relative tolerance: margin m of constraint (mu, nu) is active when
        ``m <= (1 + tol) * min m``.

    Returns
    -------
    support : SupportConstraints

    See Also
    --------
    assoc_cvx.StorageResult : its ``support`` lists the same constraints for a
        max-margin verdict (relative tolerance 1e-6).

    Notes
    -----
    The max-margin W minimises :math:`\lVert W \rVert_F` subject to every
    margin :math:`(y_\mu - c)^\top W x_\mu \ge 1`; by the KKT conditions it
    is a nonnegative combination of the rows of the active constraints, its
    support. At capacity the support has about :math:`d^2` constraints and
    every input has at least one (design notes §6). Only meaningful for the
    max-margin W, computed to solver accuracy; raise ``tol`` for less
    accurate solvers.
    """
    W, X, Y, competitors = _unpack(memory, X, Y, competitors)
    tol = check_positive(tol, "tol")
    if X.shape[1] != Y.shape[1]:
        raise ValueError("support_constraints needs a square memory (d x d).")
    m = margins(W, X, difference_tensor(Y, competitors))
    smallest = m.min()
    if smallest <= 0:
        raise ValueError(
            "W does not store the associations (smallest margin "
            f"{smallest:.3g}), so it is not a max-margin matrix."
        )
    mask = m <= (1 + tol) * smallest
    per_input = mask.sum(axis=1)
    return SupportConstraints(
        mask=mask,
        n_support=int(mask.sum()),
        per_input=per_input,
        fraction_inputs=float(np.mean(per_input > 0)),
        n_weights=int(W.size),
    )


def singular_spectrum(memory) -> Spectrum:
    r"""Singular values of W, scaled to unit mean square, against the law.

    Parameters
    ----------
    memory : LinearAssociativeMemory or array-like of shape (d, d)
        A fitted memory or a matrix.

    Returns
    -------
    spectrum : Spectrum

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``memory`` is an estimator that has not been fitted.
    TypeError
        When W is complex (its imaginary part is never dropped) or not
        numeric.
    ValueError
        When W is zero, not finite or not 2-D.

    Notes
    -----
    For a d x d matrix of i.i.d. entries the singular values divided by
    their root mean square follow the quarter-circle law
    :math:`\sqrt{4 - x^2} / \pi` on [0, 2] as d grows. The distance of a
    memory's spectrum to it measures how far training moved W from a random
    matrix.
    """
    W = _memory_matrix(memory)
    if not np.any(W):
        raise ValueError("W must be a finite, nonzero 2-D array.")
    s = np.linalg.svd(W, compute_uv=False)
    x = s / np.sqrt(np.mean(s * s))
    ks = stats.kstest(x, quarter_circle_cdf).statistic
    cond = float(s[0] / s[-1]) if s[-1] > 0 else float("inf")
    return Spectrum(singular_values=x, ks_distance=float(ks), condition_number=cond)


def pool_spectra(spectra) -> Spectrum:
    """Pool the scaled singular values of several matrices.

    Parameters
    ----------
    spectra : sequence of Spectrum
        At least one; each already scaled to unit mean square.

    Returns
    -------
    pooled : Spectrum
        All singular values, their Kolmogorov-Smirnov distance to the
        quarter-circle law, and the largest condition number of the parts.
    """
    spectra = list(spectra)
    if not spectra:
        raise ValueError("Nothing to pool: no spectrum given.")
    x = np.sort(np.concatenate([s.singular_values for s in spectra]))[::-1]
    return Spectrum(
        singular_values=x,
        ks_distance=float(stats.kstest(x, quarter_circle_cdf).statistic),
        condition_number=max(s.condition_number for s in spectra),
    )


def _as_mapping(obj, name, cls):
    """``{label: item}`` from one ``cls`` item or a mapping of them."""
    if isinstance(obj, cls):
        return {"": obj}
    if not isinstance(obj, Mapping):
        raise TypeError(
            f"{name} must be a {cls.__name__} or a mapping of str labels to "
            f"{cls.__name__}; got {type(obj).__name__}."
        )
    if not obj:
        raise ValueError(f"Nothing to plot: {name} is empty.")
    for label, item in obj.items():
        if not isinstance(item, cls):
            raise TypeError(
                f"{name}[{label!r}] must be a {cls.__name__}; got "
                f"{type(item).__name__}."
            )
    return dict(obj)


def plot_scores(analyses, *, bins=30):
    """Histograms of correct and largest competitor scores, one panel each.

    Parameters
    ----------
    analyses : ScoreAnalysis or mapping of str to ScoreAnalysis
        One analysis, or several by label (e.g. ``{"optimal": a, "Hebbian":
        b}``), drawn side by side on shared axes.
    bins : int, default=30
        Histogram bins, an integer >= 1.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Top row: histograms (dashed line: the fitted Gumbel location;
        dotted: the extreme-value level of K independent normals). Bottom
        row: correct score against largest competitor score per input;
        recalled inputs lie above the diagonal.
    """
    from matplotlib.figure import Figure

    analyses = _as_mapping(analyses, "analyses", ScoreAnalysis)
    bins = check_int(bins, "bins")
    n = len(analyses)
    fig = Figure(figsize=(4.5 * n, 6.4), layout="constrained")
    axes = fig.subplots(2, n, sharex=True, squeeze=False)
    values = np.concatenate(
        [np.r_[a.correct, a.competitor_max] for a in analyses.values()]
    )
    edges = np.histogram_bin_edges(values, bins=bins)
    lims = (edges[0], edges[-1])
    for col, (label, a) in enumerate(analyses.items()):
        ax = axes[0, col]
        ax.hist(a.competitor_max, bins=edges, alpha=0.6, label="largest competitor")
        ax.hist(a.correct, bins=edges, alpha=0.6, label="correct")
        ax.axvline(a.gumbel_loc, color="k", ls="--", lw=1, label="Gumbel fit loc")
        ax.axvline(
            a.extreme_value_level, color="k", ls=":", lw=1, label="EV level, K normals"
        )
        ax.set_title(f"{label} (recall {a.recall:.0%})".strip())
        ax = axes[1, col]
        ax.scatter(a.competitor_max, a.correct, s=8)
        ax.plot(lims, lims, "k-", lw=0.8, label="correct = competitor")
        ax.set_xlabel("score, ||W||_F = d")
        ax.set_ylim(lims)
    axes[0, 0].set_ylabel("inputs")
    axes[1, 0].set_ylabel("correct score")
    axes[0, 0].legend(fontsize="small")
    axes[1, 0].legend(fontsize="small")
    for ax in axes[1]:
        ax.set_xlabel("largest competitor score, ||W||_F = d")
    return fig


def plot_spectrum(spectra, *, bins=20):
    """Histogram of scaled singular values against the quarter-circle law.

    Parameters
    ----------
    spectra : Spectrum or mapping of str to Spectrum
        One spectrum, or several by label, overlaid.
    bins : int, default=20
        Histogram bins on [0, max], an integer >= 1.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    spectra = _as_mapping(spectra, "spectra", Spectrum)
    bins = check_int(bins, "bins")
    fig = Figure(figsize=(5, 3.4), layout="constrained")
    ax = fig.subplots()
    top = max(2.0, *(float(s.singular_values.max()) for s in spectra.values()))
    edges = np.linspace(0, top * 1.02, bins + 1)
    for label, s in spectra.items():
        ax.hist(
            s.singular_values,
            bins=edges,
            density=True,
            histtype="step",
            lw=1.5,
            label=f"{label} (KS {s.ks_distance:.2f})".strip(),
        )
    x = np.linspace(0, 2, 200)
    ax.plot(x, quarter_circle_pdf(x), "k--", lw=1, label="quarter circle")
    ax.set_xlabel("singular value / rms")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return fig
