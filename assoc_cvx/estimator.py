"""A linear associative memory as a scikit-learn estimator."""

import logging
import warnings

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from assoc_cvx._validation import check_positive, check_row_scale, rms_row_norm
from assoc_cvx.engine import (
    CERTIFICATE_TOL,
    SOLVER_OPTIONS,
    SOLVERS,
    decide,
    resolve_solvers,
    solve_program,
)
from assoc_cvx.exceptions import SolverError, StorageWarning
from assoc_cvx.margin import check_kappa, decide_margin, margin_solvers
from assoc_cvx.programs import difference_tensor, margins, soft_margin_program
from assoc_cvx.rules import (
    GRADIENT_DEFAULTS,
    check_rule_params,
    gradient_weights,
    pseudo_inverse_weights,
)

__all__ = ["RULES", "LinearAssociativeMemory"]

logger = logging.getLogger(__name__)

#: Learning rules accepted by :class:`LinearAssociativeMemory`.
RULES = ("max_margin", "hebbian", "pseudo_inverse", "gradient")


def _unit_exponent(A, axis=None):
    """Exponents e with ``A * 2**-e`` of largest absolute entry in [0.5, 1).

    One exponent for the whole array (``axis=None``) or one per slice along
    ``axis`` (kept as a length-1 axis); zero where every entry is zero.
    Scaling by powers of two is exact, so rankings are those of ``A``.
    """
    keepdims = axis is not None
    peak = np.max(np.abs(A), axis=axis, keepdims=keepdims, initial=0.0)
    return np.frexp(peak)[1]


def _normalised_margin(W, X, D):
    """Smallest margin of ``W / ||W||_F`` over ``X`` and ``D``; zero for ``W = 0``.

    Computed on data rescaled to unit root-mean-square row norm and scaled
    back, so that it neither over- nor underflows at extreme scales.
    """
    W_unit = np.ldexp(W, -_unit_exponent(W))
    norm = np.linalg.norm(W_unit)
    if norm == 0:
        return 0.0
    sx, sd = rms_row_norm(X), rms_row_norm(D)
    return float(margins(W_unit / norm, X / sx, D / sd).min()) * sx * sd


def _recalled(scores):
    """Boolean mask of the rows whose own column strictly beats every other one."""
    n = scores.shape[0]
    own = scores[np.arange(n), np.arange(n)]
    others = np.where(np.eye(n, dtype=bool), -np.inf, scores)
    return own > others.max(axis=1, initial=-np.inf)


class LinearAssociativeMemory(BaseEstimator):
    r"""A matrix W that recalls target patterns from input patterns.

    ``fit(X, y)`` learns a matrix ``W`` of shape (n_targets, n_features) meant
    to store every association ``x_mu -> y_mu``: input ``x_mu`` (row mu of X)
    must score its own target above every other target,
    ``y_mu^T W x_mu > y_nu^T W x_mu`` for all nu != mu. ``predict`` recalls,
    for each input, the fitted target with the highest score.

    Parameters
    ----------
    rule : {"max_margin", "hebbian", "pseudo_inverse", "gradient"}
        Learning rule. ``"max_margin"`` (the default): the matrix of smallest
        Frobenius norm with every margin at least one, found by convex
        programming, or the soft-margin matrix when the associations cannot
        all be stored.
        ``"hebbian"``: the outer-product rule ``W = Y^T X``, no solver.
        ``"pseudo_inverse"``: the least-squares matrix whose scores
        ``X W^T Y^T`` are closest to the identity, ``W = Y^+ (X^+)^T``.
        ``"gradient"``: full-batch training of W on softmax cross-entropy
        over the fitted targets (see :func:`assoc_cvx.rules.gradient_weights`
        and the parameters below). The last three only compute a W and check
        it; when it fails, another W may still store the associations.
    solver : {"auto", "IPM", "ECOS", "CLARABEL", "HIGHS", "SCS"}, default="auto"
        Solver of the convex programs (case-insensitive). ``"auto"`` tries the
        installed ones in that order, starting with the package's structured
        interior-point solver (``"IPM"``, storage program only); a named
        solver is tried first and the other installed ones after it.
        Validated for every rule, used only by ``rule="max_margin"``; the
        soft-margin program, a quadratic program, goes to ECOS, CLARABEL and
        SCS before HIGHS, whose QP solver is much slower on it. HIGHS solves
        the linear-programming variant (every entry of W bounded instead of
        its Frobenius norm). When the verdict comes from it, or from the
        preconditioned program a solver gets when the plain one is
        undecided, ``coef_`` still has smallest margin one but is not the
        minimum-norm matrix, and ``margin_`` is only a lower bound on kappa*
        (``storage_result_.max_margin`` is False).
    C : float, default=1.0
        Cost of a unit of slack in the soft-margin program, used only when
        ``rule="max_margin"`` and the associations are not (or not provably)
        storable. Must be positive. Unlike storage, the soft-margin matrix
        depends on the scale of the data: multiplying X by a and y by b acts
        as multiplying C by ``(a * b)**2``, and solvers lose accuracy when
        that product is far from one (roughly outside [1e-4, 1e4] for data of
        unit row norm).
    certificate_tol : float, default=1e-8
        "Not storable" needs a certificate bounding the best normalised margin
        of the preconditioned instance (whitened inputs and difference
        vectors, unit rows; see :func:`assoc_cvx.check_storage`) by at most
        this. Must be positive.
    learning_rate : float, default=0.1
        Step size of ``rule="gradient"``, positive.
    max_iter : int, default=4000
        Largest number of full-batch steps of ``rule="gradient"``.
    optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of ``rule="gradient"``: Adam, or gradient descent with
        momentum 0.9.
    tol : float, default=1e-8
        ``rule="gradient"`` stops when the largest absolute entry of the
        gradient is at most this (it also stops as soon as every
        association is recalled). Non-negative.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the small random initial W of ``rule="gradient"``.
    kappa : float, default=0.0
        Required normalised margin (>= 0), for ``rule="max_margin"`` only:
        with ``||W||_F = sqrt(n_targets * n_features)`` every margin must be
        at least kappa, in standard deviations of a random competitor's
        score (see :mod:`assoc_cvx.margin`). With kappa > 0, ``coef_`` (when
        stored) is the matrix of largest smallest margin at that norm, found
        by the structured solver's max-margin solve or the Frobenius-ball
        cone solvers (ECOS, CLARABEL, SCS), and ``stored_``
        says whether margin kappa is reached.

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_features)
        The memory matrix W. A 1-D target gives ``n_targets = 1``.
    stored_ : bool or None
        True: every fitted association is recalled strictly by ``coef_``
        (margins recomputed in float64). False: ``rule="max_margin"``: a
        certificate shows that no matrix stores them, and ``coef_`` is the
        soft-margin matrix; the other rules: their matrix leaves some
        association unrecalled, which proves nothing about other matrices.
        None: storage could not be decided, and ``coef_`` is the soft-margin
        matrix.
    margin_ : float
        Smallest margin ``(y_mu - y_nu)^T W x_mu`` of ``W = coef_ /
        ||coef_||_F`` over the fitted pairs. With ``rule="max_margin"`` and
        ``stored_`` True it is kappa*, the best normalised margin any matrix
        achieves, to solver accuracy (only a lower bound on it when
        ``storage_result_.max_margin`` is False; see ``solver``). Otherwise
        it is the margin of the returned matrix: negative when some
        association is not recalled, zero for a zero matrix. It scales with
        the data: multiplying X by a and y by b multiplies it by ``a * b``.
    targets_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The fitted targets Y, in the shape they were given; ``predict``
        returns rows of it.
    storage_result_ : StorageResult or None
        The storage verdict with its evidence (``rule="max_margin"``), None
        for the other rules.
    solver_ : str or None
        The solver that computed ``coef_``; None for the rules that use no
        solver.
    n_iter_ : int
        Gradient steps taken by ``rule="gradient"`` (counted as 1 when the
        initial W already recalls everything); 1 for the other rules, which
        compute ``coef_`` in one pass.
    n_features_in_ : int
        Number of input features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the input features, defined only when X has string column
        names.

    See Also
    --------
    assoc_cvx.check_storage : decide storage of square associations and return
        the evidence.
    assoc_cvx.make_associations : draw random associations.
    sklearn.svm.LinearSVC : Crammer-Singer multiclass SVM; it learns a free
        weight vector per class, not a matrix acting on given targets.

    Notes
    -----
    With difference vectors ``d_{mu nu} = y_mu - y_nu``, ``rule="max_margin"``
    solves

    .. math::
        \min_W \ \lVert W \rVert_F^2 \quad \text{s.t.} \quad
        d_{\mu\nu}^\top W x_\mu \ge 1 \quad \forall \mu \ne \nu .

    It is obtained through the scale-free program

    .. math::
        \kappa^* = \max_{\lVert W \rVert_F \le 1} \ \min_{\mu \ne \nu}
        d_{\mu\nu}^\top W x_\mu ,

    which decides storage (kappa* > 0 exactly when the associations can be
    stored) and stays well conditioned near capacity; its solution divided by
    kappa* is the max-margin matrix, whose smallest margin is exactly one.
    When kappa* is certified to be zero, or storage is undecided, ``coef_``
    comes from the soft-margin program, which is always feasible:

    .. math::
        \min_{W, \xi \ge 0} \ \tfrac12 \lVert W \rVert_F^2
        + C \sum_{\mu \ne \nu} \xi_{\mu\nu} \quad \text{s.t.} \quad
        d_{\mu\nu}^\top W x_\mu \ge 1 - \xi_{\mu\nu} ,

    and a :class:`~assoc_cvx.StorageWarning` is issued. ``rule="hebbian"``
    takes ``W = \sum_\mu y_\mu x_\mu^\top``; ``rule="pseudo_inverse"``
    the minimum-norm minimiser of ``||X W^T Y^T - I||_F``; ``rule="gradient"``
    minimises the mean softmax cross-entropy of the scores ``X W^T Y^T``
    (each input's correct target as its label) from a small random start,
    on X and Y rescaled to unit root-mean-square row norm (the loss depends
    on scale), and stops as soon as every association is recalled. With
    these three, ``stored_`` False says only that this W fails.

    Multiplying X by a > 0 and y by b > 0 changes neither ``stored_`` nor
    ``predict`` and ``score``: verdicts are computed, and scores ranked, on
    rescaled data.
    ``coef_`` is divided by ``a * b`` (max-margin, pseudo-inverse,
    gradient) or multiplied by it (Hebbian); only the soft-margin matrix
    changes otherwise (see ``C``).
    The largest entry of every nonzero row of X and y must lie in
    [1e-100, 1e100], where margins stay normal float64 numbers.

    Input mu can recall its target only if ``y_mu`` is the unique maximiser
    of some linear function over the targets, that is a vertex of their
    convex hull that no other row repeats. So a repeated target row, a target
    inside the hull of the others (for a 1-D y with three or more distinct
    values, every middle one), or an input paired with two different targets
    can never be stored; with linearly independent inputs, distinct vertices
    are also sufficient. The programs hold ``n_samples * (n_samples - 1)``
    margin constraints, so their cost grows quickly with the number of
    associations. Random associations with d-dimensional inputs and targets
    can all be stored up to ``p log p / d^2 -> 1/2`` as d grows, by the
    Hebbian rule only up to ``1/8`` (arXiv:2605.10795).

    Examples
    --------
    >>> import numpy as np
    >>> from assoc_cvx import LinearAssociativeMemory
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((6, 8))
    >>> Y = rng.standard_normal((6, 5))
    >>> memory = LinearAssociativeMemory().fit(X, Y)
    >>> memory.stored_
    True
    >>> memory.coef_.shape
    (5, 8)
    >>> memory.score(X, Y)
    1.0
    >>> bool(np.array_equal(memory.predict(X), Y))
    True
    """

    def __init__(
        self,
        rule: str = "max_margin",
        *,
        solver: str = "auto",
        C: float = 1.0,
        certificate_tol: float = CERTIFICATE_TOL,
        learning_rate: float = GRADIENT_DEFAULTS["learning_rate"],
        max_iter: int = GRADIENT_DEFAULTS["max_iter"],
        optimizer: str = GRADIENT_DEFAULTS["optimizer"],
        tol: float = GRADIENT_DEFAULTS["tol"],
        random_state=None,
        kappa: float = 0.0,
    ) -> None:
        self.rule = rule
        self.solver = solver
        self.C = C
        self.certificate_tol = certificate_tol
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.tol = tol
        self.random_state = random_state
        self.kappa = kappa

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _check_params(self):
        """Validate the parameters.

        Returns the solvers to try, C, the certificate cut and the settings
        of the gradient rule.
        """
        owner = type(self).__name__
        if not isinstance(self.rule, str) or self.rule not in RULES:
            raise ValueError(
                f"The rule parameter of {owner} must be one of "
                f"{', '.join(map(repr, RULES))}; got {self.rule!r}."
            )
        solvers = resolve_solvers(self.solver)
        C = check_positive(self.C, f"The C parameter of {owner}")
        certificate_tol = check_positive(
            self.certificate_tol, f"The certificate_tol parameter of {owner}"
        )
        gradient_settings = check_rule_params(
            {
                "learning_rate": self.learning_rate,
                "max_iter": self.max_iter,
                "optimizer": self.optimizer,
                "tol": self.tol,
                "random_state": self.random_state,
            },
            owner=owner,
        )
        return solvers, C, certificate_tol, gradient_settings

    def fit(self, X: ArrayLike, y: ArrayLike) -> "LinearAssociativeMemory":
        """Learn the memory matrix from associations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs, one per row; at least 2 rows.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets Y, dense and real; row mu is the target of input mu. A 1-D
            y is a single target column.

        Returns
        -------
        self : LinearAssociativeMemory
            The fitted estimator.

        Raises
        ------
        ValueError
            Bad input (NaN or infinity, wrong dimensions, different numbers of
            rows, fewer than 2 rows, a nonzero row of X or y whose largest
            absolute entry is outside [1e-100, 1e100]) or a bad parameter
            value.
        TypeError
            A sparse or non-numeric y, or a numeric parameter that is not a
            real number.
        SolverError
            The requested solver is not installed, or no solver could solve
            the soft-margin program.

        Warns
        -----
        StorageWarning
            When the fitted associations are not all stored by ``coef_``, or
            it could not be decided whether they can be.
        """
        solvers, C, certificate_tol, gradient_settings = self._check_params()
        kappa = check_kappa(self.kappa, f"The kappa parameter of {type(self).__name__}")
        if kappa > 0 and self.rule != "max_margin":
            raise ValueError(
                f"kappa > 0 applies to rule='max_margin' only; got rule={self.rule!r}."
            )
        _reject_sparse_targets(y)
        X, Y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            dtype=np.float64,
            ensure_min_samples=2,
        )
        Y = _real_targets(Y)
        targets = Y.reshape(Y.shape[0], -1)
        check_row_scale(X, "X")
        check_row_scale(targets, "y")
        D = difference_tensor(targets)
        p = X.shape[0]
        n_iter = 1
        if self.rule in ("pseudo_inverse", "gradient"):
            # Trained on data of unit root-mean-square row norm (the gradient
            # rule depends on scale; both would over- or underflow at the
            # ends of the accepted scales), then scaled back.
            sx, sy = rms_row_norm(X), rms_row_norm(targets)
            if self.rule == "pseudo_inverse":
                W_unit = pseudo_inverse_weights(X / sx, targets / sy)
            else:
                trained = gradient_weights(X / sx, targets / sy, **gradient_settings)
                W_unit, n_iter = trained.W, max(trained.n_iter, 1)
            W = W_unit / sx / sy
            recalled = _recalled(_ranking_scores(X, W, targets))
            stored, n_recalled = bool(recalled.all()), int(recalled.sum())
            result = solver = None
            if not stored:
                warnings.warn(
                    f"The {self.rule} rule's matrix recalls {n_recalled} of {p} "
                    "associations strictly; rule='max_margin' stores them all "
                    "when that is possible.",
                    StorageWarning,
                    stacklevel=2,
                )
        elif self.rule == "hebbian":
            W = targets.T @ X
            # Ranked as in score(), on rescaled data: X @ W.T @ targets.T
            # would over- or underflow at the ends of the accepted scales.
            recalled = _recalled(_ranking_scores(X, W, targets))
            stored, n_recalled = bool(recalled.all()), int(recalled.sum())
            result = solver = None
            if not stored:
                warnings.warn(
                    f"The Hebbian matrix recalls {n_recalled} of {p} associations "
                    "strictly; rule='max_margin' stores them all when that is "
                    "possible.",
                    StorageWarning,
                    stacklevel=2,
                )
        else:
            result = (decide_margin if kappa > 0 else decide)(
                X,
                D,
                solvers=margin_solvers(solvers) if kappa > 0 else solvers,
                constraints="coupled",
                certificate_tol=certificate_tol,
                **({"kappa": kappa} if kappa > 0 else {}),
            )
            stored = result.stored
            if stored:
                W, solver = result.W, result.solver
            else:
                W, solver = _soft_margin(X, D, C, solvers)
                if stored is False and kappa > 0:
                    reason = (
                        f"The {p} associations cannot all be stored with margin "
                        f"kappa={kappa:g} (evidence from {result.solver})"
                    )
                elif stored is False:
                    reason = (
                        f"The {p} associations cannot all be stored by a linear "
                        f"map (certificate from {result.solver}, bound "
                        f"{result.certificate:.2g} <= {certificate_tol:g})"
                    )
                else:
                    tried = "; ".join(
                        f"{a.solver} {a.formulation}: {a.solver_status} ({a.message})"
                        for a in result.attempts
                    )
                    reason = (
                        f"Whether the {p} associations can all be stored is "
                        f"undecided after {tried}"
                    )
                warnings.warn(
                    f"{reason}; coef_ is the soft-margin matrix with C={C:g}.",
                    StorageWarning,
                    stacklevel=2,
                )
        self.coef_ = W
        self.stored_ = stored
        self.margin_ = _normalised_margin(W, X, D)
        self.targets_ = Y
        self.storage_result_ = result
        self.solver_ = solver
        self.n_iter_ = n_iter
        return self

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Score every input against every fitted target.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_fitted_targets)
            ``scores[i, nu] = y_nu^T W x_i`` for the fitted targets ``y_nu``
            (the rows of ``targets_``). They can overflow when inputs, W and
            targets are all large; ``predict`` and ``score`` rank rescaled
            scores and are not affected.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        targets = self._check_width(self.targets_)
        return X @ self.coef_.T @ targets.T

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Recall the fitted target of each input.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Row i is the row of ``targets_`` with the highest score for input
            i (the first one on ties); 1-D when the model was fitted on a 1-D
            target.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        recalled = np.argmax(self._ranking_scores(X, self.targets_), axis=1)
        return self.targets_[recalled]

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Top-1 recall of the associations ``X[i] -> y[i]``.

        Scores every input against the rows of the ``y`` passed here (not the
        fitted targets) and returns the fraction of rows i whose
        highest-scoring target among the rows of ``y`` is row i, counting row
        i only when its score is strictly higher than that of every other row
        (ties count as misses, so a repeated target row is never recalled).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets, dense and real; row i is the target of input i.

        Returns
        -------
        score : float
            Fraction in [0, 1] of associations recalled.
        """
        check_is_fitted(self)
        _reject_sparse_targets(y)
        X, Y = validate_data(
            self,
            X,
            y,
            reset=False,
            multi_output=True,
            dtype=np.float64,
        )
        scores = self._ranking_scores(X, _real_targets(Y))
        return float(np.mean(_recalled(scores)))

    def _check_width(self, Y):
        """Targets as a 2-D array, after checking their number of columns."""
        targets = Y.reshape(Y.shape[0], -1)
        n_targets = self.coef_.shape[0]
        if targets.shape[1] != n_targets:
            raise ValueError(
                f"y has {targets.shape[1]} target columns, but "
                f"{type(self).__name__} was fitted with {n_targets}."
            )
        return targets

    def _ranking_scores(self, X, Y):
        """Scores of ``X`` against the targets ``Y``, ranked without overflow."""
        return _ranking_scores(X, self.coef_, self._check_width(Y))


def _reject_sparse_targets(y):
    if sp.issparse(y):
        raise TypeError(
            f"y must be a dense array; got a sparse {type(y).__name__} "
            "(convert it with y.toarray())."
        )


def _real_targets(Y):
    """Return validated targets as float64, or raise unless they are real."""
    if Y.dtype.kind in "SU" or (
        Y.dtype.kind == "O" and any(isinstance(v, str | bytes) for v in Y.flat)
    ):
        raise TypeError(
            "y must hold real numbers, one target vector per row; got strings "
            f"(dtype {Y.dtype}). Encode class labels as numeric target vectors."
        )
    try:
        Y = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"y must hold real numbers; {exc}.") from None
    if not np.all(np.isfinite(Y)):
        raise ValueError("Input y contains NaN or infinity.")
    return Y


def _ranking_scores(X, W, targets):
    """``X W^T targets^T`` up to a positive factor per row, free of overflow.

    Each input row, W and the targets are scaled by powers of two, so the
    order of the scores in every row, ties included, is that of the exact
    scores whenever those are representable; it does not depend on the
    scale of the data.
    """
    X = np.ldexp(X, -_unit_exponent(X, axis=1))
    W = np.ldexp(W, -_unit_exponent(W))
    targets = np.ldexp(targets, -_unit_exponent(targets))
    return X @ W.T @ targets.T


def _soft_margin(X, D, C, solvers):
    """Solve the soft-margin program with the first solver that succeeds.

    Returns ``(W, solver)``; raises :class:`SolverError` when none succeeds.
    The program, and W, are unchanged when X is divided by a number and D
    multiplied by it; the solver is given X and D of equal root-mean-square
    row norm, so that inputs and targets of very different scales stay
    accurate.
    """
    balance = np.sqrt(rms_row_norm(X) / rms_row_norm(D))
    program = soft_margin_program(X / balance, D * balance, C=C)
    tried = []
    # The soft-margin program is a quadratic program: HiGHS's QP solver took
    # minutes where the conic solvers take milliseconds, so it is used last.
    # The structured solver (IPM) solves only the storage program itself.
    conic = [s for s in solvers if s != "IPM" and SOLVERS[s] == "fro"]
    order = conic + [s for s in solvers if SOLVERS[s] != "fro"]
    for name in order:
        run = solve_program(program, name, SOLVER_OPTIONS.get(name, {}))
        W = program.W.value
        if run.status == cp.OPTIMAL and W is not None and np.all(np.isfinite(W)):
            return np.array(W, dtype=np.float64), name
        tried.append(f"{name}: {run.message or run.status}")
        logger.info("%s failed on the soft-margin program: %s", name, tried[-1])
    raise SolverError(
        "No solver could solve the soft-margin program; tried "
        + "; ".join(tried)
        + ". Check the scale of X and y, or try a smaller C."
    )
