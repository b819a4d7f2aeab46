r"""A structured primal-dual interior-point solver for the storage programs.

The scale-free storage program in quadratic form,

.. math::
    \max_{W, \tau} \ \tau - \tfrac12 \lVert W \rVert_F^2 \quad \text{s.t.}
    \quad a_r^\top \operatorname{vec} W \ge \tau \quad (r = (\mu, k)),

with rows :math:`a_r = \operatorname{vec}(D_{\mu k} x_\mu^\top)`, has the dual

.. math::
    \min_{\lambda \ge 0, \ \sum \lambda = 1} \ \tfrac12 \lVert A^\top \lambda
    \rVert^2 ,

the squared distance of the origin from the convex hull of the rows. At the
optimum ``W = A^T lambda`` and ``tau = ||W||_F^2 = kappa*^2``, where kappa* is
the best normalised margin; kappa* = 0 exactly when no W stores the set.

The Newton matrix of a primal-dual step is ``I + A^T diag(d) A`` with
``d = lambda / s``. Because every row of A is a Kronecker product, it equals

.. math:: I + \sum_\mu M_\mu \otimes x_\mu x_\mu^\top, \qquad
          M_\mu = \sum_k d_{\mu k} D_{\mu k} D_{\mu k}^\top ,

a (d_out d_in) square matrix built with one matrix product over mu and
factored by one Cholesky decomposition. The p K x d_out d_in constraint matrix
is never formed: margins and ``A^T lambda`` are computed from ``W x_mu`` and
``sum_k lambda_{mu k} D_{mu k}``.
"""

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from assoc_cvx._validation import check_int, check_positive, check_real
from assoc_cvx.exceptions import InsufficientMemoryError

__all__ = [
    "IPM_OPTIONS",
    "MAX_MARGIN_GAP",
    "IPMResult",
    "InsufficientMemoryError",
    "available_memory",
    "check_ipm_options",
    "check_memory",
    "estimate_memory",
    "solve_storage_ipm",
]

logger = logging.getLogger(__name__)

#: Default options of :func:`solve_storage_ipm`.
IPM_OPTIONS = {
    "max_iter": 200,
    "gap_tol": 1e-10,
    "n_threads": None,
    "max_memory": None,
}

#: Loosest relative duality gap at which a converged run reports ``"optimal"``,
#: its last W then being the max-margin direction to about 1e-3 in every
#: entry (measured at d = 4-10: entries off by at most 1e-3 at gaps up to
#: 1.5e-8, by up to 1e-2 at 4e-7). A run that meets a looser ``gap_tol``
#: reports ``"converged"`` instead.
MAX_MARGIN_GAP = 1e-8

#: Temporary arrays of the Newton matrix assembly are built this many bytes at
#: a time.
_CHUNK_BYTES = 64 * 2**20

#: Relative diagonal shifts tried in turn when the Newton matrix does not
#: factor (its entries span more than float64 resolves near convergence).
_SHIFTS = (0.0, 1e-12, 1e-9)

#: Fraction of the distance to the boundary taken by a step.
_STEP_FRACTION = 0.99


@dataclass(frozen=True)
class IPMResult:
    """What one run of the structured interior-point solver returned.

    Attributes
    ----------
    status : {"stored", "not_storable", "optimal", "converged", "max_iter", \
"stalled", "numerical_error"}
        ``"stored"`` and ``"not_storable"``: a check given by the caller
        accepted the iterate (see :func:`solve_storage_ipm`). ``"optimal"``:
        the relative duality gap fell below ``gap_tol`` and below
        :data:`MAX_MARGIN_GAP`. ``"converged"``: it fell below a ``gap_tol``
        looser than :data:`MAX_MARGIN_GAP`, so the last W is not claimed to
        be the max-margin direction. Otherwise the run stopped without
        converging.
    W : ndarray of shape (d_out, d_in)
        The last primal iterate (``A^T lambda`` up to rounding).
    tau : float
        The common margin of the last iterate.
    weights : ndarray of shape (p, K)
        The last dual iterate lambda >= 0, summing to one.
    iterations : int
        Newton steps taken.
    gap : float
        Relative duality gap ``lambda^T s / max(||W||_F^2, |tau|)`` at the end.
    solve_time : float
        Seconds.
    memory : int
        Estimated peak bytes of the solve (see :func:`estimate_memory`).
    history : tuple of dict
        Per iteration: ``gap``, ``mu``, ``tau``, ``step``, ``bound``.
    """

    status: str
    W: np.ndarray
    tau: float
    weights: np.ndarray
    iterations: int
    gap: float
    solve_time: float
    memory: int
    history: tuple = field(default=(), repr=False)


def estimate_memory(p, K, d_in, d_out):
    """Estimated peak memory, in bytes, of deciding storage with the IPM.

    Counts the Newton matrix (factored in place), the Kronecker factors of
    its assembly, the per-row vectors of the iteration, the chunked
    temporaries, and three arrays the size of the difference tensor D
    (``8 p K d_out`` bytes each): D itself, its rescaled copy and the
    rounding-error bounds of the float64 check of a stored verdict.

    Parameters
    ----------
    p, K, d_in, d_out : int
        Patterns, competitors per pattern, input and output dimensions.

    Returns
    -------
    n_bytes : int
    """
    n = d_in * d_out
    newton = n * n
    kron = p * (d_in * d_in + d_out * d_out) + d_out * d_in * d_in
    rows = 14 * p * K
    tensors = 3 * p * K * d_out
    return int(8 * (newton + kron + rows + tensors) + 2 * _CHUNK_BYTES)


def check_memory(p, K, d_in, d_out, max_memory=None):
    """Raise :class:`InsufficientMemoryError` if a solve would not fit.

    Parameters
    ----------
    p, K, d_in, d_out : int
        Patterns, competitors per pattern, input and output dimensions.
    max_memory : int, default=None
        Bytes allowed, a positive number; None uses the memory available now
        (when known).

    Returns
    -------
    n_bytes : int
        The estimate of :func:`estimate_memory`.

    Raises
    ------
    TypeError, ValueError
        When ``max_memory`` is neither None nor a positive finite number.
    """
    if max_memory is not None:
        max_memory = check_positive(max_memory, "IPM: max_memory")
    need = estimate_memory(p, K, d_in, d_out)
    allowed = available_memory() if max_memory is None else int(max_memory)
    if allowed is not None and need > allowed:
        source = "allowed (max_memory)" if max_memory is not None else "available"
        raise InsufficientMemoryError(
            f"Deciding storage of p={p} patterns with K={K} competitors each, "
            f"W of shape {d_out}x{d_in}, would need about {need / 2**30:.2f} GiB, "
            f"more than the {allowed / 2**30:.2f} GiB {source}. Use fewer "
            "patterns or a smaller dimension."
        )
    return need


def available_memory():
    """Bytes of memory available to this process now, or None if unknown.

    Reads ``MemAvailable`` from ``/proc/meminfo`` (Linux) and the cgroup
    limit when there is one.
    """
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    for path in (
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            found.append(int(text))
    if not found and hasattr(os, "sysconf"):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(found) if found else None


class _Rows:
    """The constraint rows ``a_(mu, k) = vec(D[mu, k] x_mu^T)``, never formed."""

    def __init__(self, X, D):
        self.X, self.D = X, D
        self.p, self.K, self.d_out = D.shape
        self.d_in = X.shape[1]
        self.n = self.d_in * self.d_out
        # Row mu of P is vec(x_mu x_mu^T).
        self.P = (X[:, :, None] * X[:, None, :]).reshape(self.p, -1)
        row_bytes = 8 * self.K * self.d_out
        self.chunk = max(1, _CHUNK_BYTES // max(row_bytes, 1))

    def margins(self, W):
        """``A vec(W)`` as a (p, K) array."""
        V = self.X @ W.T  # (p, d_out)
        return np.matmul(self.D, V[:, :, None])[:, :, 0]

    def adjoint(self, weights):
        """``A^T weights`` as a (d_out, d_in) matrix."""
        G = np.matmul(weights[:, None, :], self.D)[:, 0, :]  # (p, d_out)
        return G.T @ self.X

    def newton_matrix(self, scaling, out):
        """Write the lower triangle of ``I + A^T diag(scaling) A`` into ``out``.

        ``out`` is C-ordered of shape (n, n), index ``a * d_in + i`` for entry
        ``W[a, i]``; its strict upper triangle is left undefined.
        """
        p, d_in, d_out = self.p, self.d_in, self.d_out
        M = np.empty((p, d_out, d_out))
        for start in range(0, p, self.chunk):
            stop = min(start + self.chunk, p)
            Dc = self.D[start:stop]
            weighted = Dc * scaling[start:stop, :, None]
            np.matmul(weighted.transpose(0, 2, 1), Dc, out=M[start:stop])
        blocks = out.reshape(d_out, d_in, d_out, d_in)
        for a in range(d_out):
            # Block row a, block columns b <= a: sum_mu M[mu, a, b] x x^T.
            G = M[:, a, : a + 1].T @ self.P  # (a + 1, d_in * d_in)
            blocks[a, :, : a + 1, :] = G.reshape(a + 1, d_in, d_in).transpose(1, 0, 2)
        out.flat[:: self.n + 1] += 1.0


def _max_step(v, dv):
    """Largest alpha in (0, 1] with ``v + alpha dv >= 0``."""
    negative = dv < 0
    if not negative.any():
        return 1.0
    return float(min(1.0, np.min(-v[negative] / dv[negative])))


def check_ipm_options(*, max_iter=200, gap_tol=1e-10, n_threads=None, max_memory=None):
    """Validate the options of :func:`solve_storage_ipm`; return them as a dict.

    Parameters
    ----------
    max_iter : int, default=200
        An integer >= 0 (not a bool).
    gap_tol : float, default=1e-10
        A number in (0, 1).
    n_threads : int or None, default=None
        An integer >= 1, or None.
    max_memory : int, float or None, default=None
        A positive finite number of bytes, or None.

    Returns
    -------
    options : dict
        The four options, ``max_iter`` and ``n_threads`` as int, ``gap_tol``
        and ``max_memory`` as float.

    Raises
    ------
    TypeError
        An option of the wrong type (a bool or a string for a number).
    ValueError
        An option out of range.
    """
    return {
        "max_iter": check_int(max_iter, "IPM: max_iter", minimum=0),
        "gap_tol": check_real(
            gap_tol, "IPM: gap_tol", low=0.0, high=1.0, low_open=True, high_open=True
        ),
        "n_threads": (
            None if n_threads is None else check_int(n_threads, "IPM: n_threads")
        ),
        "max_memory": (
            None
            if max_memory is None
            else check_positive(max_memory, "IPM: max_memory")
        ),
    }


def solve_storage_ipm(
    X,
    D,
    *,
    stop_stored=None,
    stop_certified=None,
    max_margin=True,
    max_iter=200,
    gap_tol=1e-10,
    n_threads=None,
    max_memory=None,
):
    r"""Solve the scale-free storage program with the structured interior-point method.

    Parameters
    ----------
    X : ndarray of shape (p, d_in)
        Inputs (rows of root-mean-square norm near one work best).
    D : ndarray of shape (p, K, d_out)
        Difference vectors (see :func:`~assoc_cvx.programs.difference_tensor`).
    stop_stored : callable, default=None
        ``stop_stored(W) -> bool``, called with an iterate all of whose
        margins are positive in float64; True ends the run with status
        ``"stored"``. None never stops there.
    stop_certified : callable, default=None
        ``stop_certified(weights) -> bool``, called with the dual iterate
        (lambda >= 0 summing to one) once ``||A^T lambda||_F`` is below
        ``1e-6``, until it accepts one, and with the last iterate; an
        accepted one gives status ``"not_storable"``. None never does.
    max_margin : bool, default=True
        Go on until the run has converged, so that the last W is the
        max-margin direction (or the last weights the sharpest
        certificate). False: end at the first accepted check (verdict only),
        about three times faster near capacity.
    max_iter : int, default=200
        Newton steps at most, an integer >= 0.
    gap_tol : float, default=1e-10
        Relative duality gap ``lambda^T s / max(||W||_F^2, |tau|)`` at which
        the run has converged, in (0, 1). Above :data:`MAX_MARGIN_GAP`
        (1e-8) a converged run has status ``"converged"``, not
        ``"optimal"``: its last W may be far from the max-margin direction
        (entries off by 1 % at a gap of 4e-7, W off by 90 % in norm at 0.5),
        so :func:`assoc_cvx.check_storage` does not call it max-margin.
    n_threads : int, default=None
        BLAS threads during the solve (threadpoolctl), an integer >= 1; None
        leaves the current setting.
    max_memory : int, default=None
        Bytes allowed, a positive number; None uses the memory available
        now.

    Returns
    -------
    result : IPMResult

    Raises
    ------
    InsufficientMemoryError
        When :func:`estimate_memory` exceeds ``max_memory``.
    TypeError, ValueError
        When an option is of the wrong type or out of range (see
        :func:`check_ipm_options`).

    Notes
    -----
    Mehrotra's predictor-corrector method from a strictly feasible start
    (uniform lambda, ``W = A^T lambda``, tau below every margin), one common
    step length for both iterates since W is shared. Each iteration costs
    about ``p d^4 + d^6 / 3 + 4 p K d`` flops and one Cholesky decomposition;
    memory is about ``8 d^4`` bytes beyond the difference tensor.

    The solver decides nothing itself: the caller's checks do, on the
    iterates (see :func:`assoc_cvx.check_storage`).
    """
    options = check_ipm_options(
        max_iter=max_iter, gap_tol=gap_tol, n_threads=n_threads, max_memory=max_memory
    )
    max_iter, gap_tol = options["max_iter"], options["gap_tol"]
    n_threads = options["n_threads"]
    p, K, d_out = D.shape
    need = check_memory(p, K, X.shape[1], d_out, options["max_memory"])
    t0 = time.perf_counter()
    limits = {} if n_threads is None else {"limits": n_threads}
    with threadpool_limits(user_api="blas", **limits):
        status, state, iterations, gap, history = _iterate(
            _Rows(X, D),
            stop_stored,
            stop_certified,
            max_margin,
            max_iter,
            gap_tol,
        )
    W, tau, weights = state
    return IPMResult(
        status=status,
        W=W,
        tau=float(tau),
        weights=weights,
        iterations=iterations,
        gap=float(gap),
        solve_time=time.perf_counter() - t0,
        memory=need,
        history=tuple(history),
    )


#: Absolute duality gap at which a run has converged whatever kappa* is: the
#: data are scaled to rows of norm about one, and kappa*^2 = tau of a set
#: that can be stored is then far above it.
_ABS_GAP = 1e-26

#: ||A^T lambda||_F below which the dual iterate is offered as a certificate.
_OFFER_BOUND = 1e-6


class _NewtonSystem:
    """The factored Newton matrix of one iterate and its direction solves.

    The step solves, for a complementarity target ``rc`` (``s * lam`` minus
    the centring term),

    ``dW - A^T dlam = -r_w``, ``1^T dlam = -r_tau``,
    ``A dW - dtau 1 - ds = -r_p``, ``s dlam + lam ds = -rc``,

    by eliminating ``ds`` and ``dlam`` and then ``dtau`` (a Schur complement
    of one number).
    """

    def __init__(self, rows, H, s, lam, residuals):
        self.rows, self.s = rows, s
        self.r_w, self.r_tau, self.r_p = residuals
        self.scaling = lam / s
        for shift in _SHIFTS:
            rows.newton_matrix(self.scaling, H)
            if shift:  # regularise a matrix that rounding made indefinite
                diagonal = H.flat[:: rows.n + 1]
                H.flat[:: rows.n + 1] += shift * diagonal.max()
            # The transpose is the Fortran-ordered view of C-ordered H: its
            # upper triangle is H's lower one, so LAPACK factors H in place.
            self.factor, info = lapack.dpotrf(H.T, lower=0, clean=0, overwrite_a=1)
            self.ok = info == 0
            if self.ok:
                break
            logger.debug("Cholesky failed (info=%d) with shift %g", info, shift)
        if not self.ok:
            return
        self.b = rows.adjoint(self.scaling).ravel()
        self.v = self._solve(self.b)
        self.schur = float(self.scaling.sum()) - float(self.b @ self.v)
        self.ok = bool(self.schur > 0)

    def _solve(self, rhs):
        return lapack.dpotrs(self.factor, rhs, lower=0)[0]

    def direction(self, rc):
        rows, s, scaling = self.rows, self.s, self.scaling
        t = rc / s + scaling * self.r_p
        u = self._solve((-self.r_w - rows.adjoint(t)).ravel())
        dtau = (-self.r_tau + float(t.sum()) + float(self.b @ u)) / self.schur
        dW = (u + self.v * dtau).reshape(self.r_w.shape)
        ds = rows.margins(dW) - dtau + self.r_p
        dlam = -rc / s - scaling * ds
        return dW, dtau, ds, dlam


def _iterate(rows, stop_stored, stop_certified, max_margin, max_iter, gap_tol):
    p, K, n = rows.p, rows.K, rows.n
    m = p * K
    lam = np.full((p, K), 1.0 / m)
    W = rows.adjoint(lam)
    g = rows.margins(W)
    spread = float(g.max() - g.min())
    scale = max(spread, float(np.abs(g).mean()), float(np.vdot(W, W)), 1e-12)
    tau = float(g.min()) - scale
    s = g - tau
    H = np.empty((n, n))
    history = []
    stored_seen = certified = False
    status = "max_iter"
    for iteration in range(max_iter + 1):
        # Residuals of the optimality conditions (zero up to rounding).
        r_w = W - rows.adjoint(lam)
        g = rows.margins(W)
        r_p = g - tau - s
        mu = float(np.vdot(lam, s)) / m
        w2 = float(np.vdot(W, W))
        gap = mu * m / max(w2, abs(tau), np.finfo(float).tiny)
        bound = float(np.linalg.norm(W - r_w)) / lam.sum()
        history.append({"gap": gap, "mu": mu, "tau": tau, "bound": bound})
        # The caller's checks.
        if stop_stored is not None and not stored_seen and g.min() > 0:
            stored_seen = bool(stop_stored(W))
            if stored_seen and not max_margin:
                status = "stored"
                break
        if stop_certified is not None and bound < _OFFER_BOUND and not certified:
            certified = bool(stop_certified(lam / lam.sum()))
            if certified and not max_margin:
                status = "not_storable"
                break
        if mu * m <= _ABS_GAP:
            status = "optimal"
            break
        if gap <= gap_tol:
            status = "optimal" if gap <= MAX_MARGIN_GAP else "converged"
            break
        if iteration == max_iter:
            break
        newton = _NewtonSystem(rows, H, s, lam, (r_w, lam.sum() - 1.0, r_p))
        if not newton.ok:
            status = "numerical_error"
            logger.info("Newton system singular at iteration %d", iteration)
            break
        # Predictor (affine) step, then Mehrotra's corrector.
        dW, dtau, ds, dlam = newton.direction(lam * s)
        alpha = min(_max_step(s, ds), _max_step(lam, dlam))
        mu_aff = float(np.vdot(lam + alpha * dlam, s + alpha * ds)) / m
        sigma = min(1.0, (mu_aff / mu) ** 3) if mu > 0 else 0.0
        dW, dtau, ds, dlam = newton.direction(lam * s + ds * dlam - sigma * mu)
        alpha = _STEP_FRACTION * min(_max_step(s, ds), _max_step(lam, dlam))
        if alpha < 1e-12:
            status = "stalled"
            break
        W = W + alpha * dW
        tau = tau + alpha * dtau
        s = s + alpha * ds
        lam = lam + alpha * dlam
        history[-1]["step"] = alpha
    if status != "not_storable" and stop_certified is not None and not stored_seen:
        # A last offer of the final weights, whatever their bound; a
        # max-margin run goes on after a first certificate, to sharpen it.
        if stop_certified(lam / lam.sum()) or certified:
            status = "not_storable"
    return status, (W, tau, lam / lam.sum()), iteration, gap, history
