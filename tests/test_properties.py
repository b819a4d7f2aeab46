"""Property-based tests (hypothesis): invariances and known-answer families.

Two decided verdicts on transformed copies of one set must agree: storage
is unchanged by positive rescaling of inputs or targets, by any invertible
linear map of the inputs (W -> W M^-1) or of the targets (W -> N^-T W), and by
a permutation of the pairs. Example counts are kept small so that these run
in seconds.
"""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assoc_cvx import SolverWarning, check_storage, make_associations
from assoc_cvx.programs import margins

PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run
)

sizes = st.integers(min_value=2, max_value=5).flatmap(
    lambda d: st.tuples(st.just(d), st.integers(min_value=2, max_value=2 * d * d))
)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
scales = st.floats(min_value=1e-6, max_value=1e6)


def _verdict(X, Y, Z=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        result = check_storage(X, Y, competitors=Z)
    if result.stored:  # evidence: the returned W stores the set as given
        D = Y[:, None, :] - (Y[np.newaxis].repeat(len(Y), 0) if Z is None else Z)
        m = margins(result.W, X, D)
        off_diagonal = ~np.eye(len(Y), dtype=bool) if Z is None else slice(None)
        assert np.all(m[off_diagonal] > 0)
    return result.stored


def _agree(a, b):
    """The verdict on the original set is decided, and the other one agrees.

    The transformed set may be undecided (a badly conditioned copy), never
    the opposite verdict.
    """
    assert a is not None
    assert b is None or a == b, (a, b)


def _well_conditioned(rng, d):
    """An invertible d x d matrix of condition number at most 100."""
    Q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return Q1 @ np.diag(np.geomspace(1.0, 100.0, d)) @ Q2


@PROPERTY_SETTINGS
@given(size=sizes, seed=seeds, a=scales, b=scales)
def test_verdict_is_invariant_to_positive_scaling(size, seed, a, b):
    d, p = size
    X, Y = make_associations(p, d, random_state=seed)
    _agree(_verdict(X, Y), _verdict(a * X, b * Y))


@PROPERTY_SETTINGS
@given(size=sizes, seed=seeds, row_scale=st.lists(scales, min_size=1, max_size=1))
def test_verdict_is_invariant_to_scaling_single_inputs(size, seed, row_scale):
    d, p = size
    X, Y = make_associations(p, d, random_state=seed)
    X2 = X.copy()
    X2[0] *= row_scale[0]  # each input may be scaled on its own
    _agree(_verdict(X, Y), _verdict(X2, Y))


@PROPERTY_SETTINGS
@given(size=sizes, seed=seeds)
def test_verdict_is_invariant_to_invertible_maps(size, seed):
    d, p = size
    rng = np.random.default_rng(seed)
    X, Y = make_associations(p, d, random_state=rng)
    M, N = _well_conditioned(rng, d), _well_conditioned(rng, d)
    _agree(_verdict(X, Y), _verdict(X @ M, Y @ N))


@PROPERTY_SETTINGS
@given(size=sizes, seed=seeds, decoupled=st.booleans())
def test_verdict_is_invariant_to_permuting_pairs(size, seed, decoupled):
    d, p = size
    rng = np.random.default_rng(seed)
    X, Y = make_associations(p, d, random_state=rng)
    Z = rng.standard_normal((p, p - 1, d)) if decoupled else None
    order = rng.permutation(p)
    Zp = None if Z is None else Z[order][:, rng.permutation(p - 1)]
    _agree(_verdict(X, Y, Z), _verdict(X[order], Y[order], Zp))


@PROPERTY_SETTINGS
@given(d=st.integers(min_value=2, max_value=6), data=st.data())
def test_at_most_d_generic_pairs_are_always_stored(d, data):
    p = data.draw(st.integers(min_value=2, max_value=d))
    X, Y = make_associations(p, d, random_state=data.draw(seeds))
    assert _verdict(X, Y) is True


@PROPERTY_SETTINGS
@given(size=sizes, seed=seeds, data=st.data())
def test_a_repeated_target_is_never_stored(size, seed, data):
    d, p = size
    p = max(p, 3)
    X, Y = make_associations(p, d, random_state=seed)
    i, j = data.draw(
        st.lists(
            st.integers(min_value=0, max_value=p - 1),
            min_size=2,
            max_size=2,
            unique=True,
        )
    )
    Y[j] = Y[i]
    assert _verdict(X, Y) is False
