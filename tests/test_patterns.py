"""Pattern generation and nested pools."""

import numpy as np
import pytest

from assoc_cvx import make_associations, make_competitors
from assoc_cvx.patterns import NestedPool


def test_gaussian_patterns_have_unit_norm_on_average():
    X, Y = make_associations(2000, 50, random_state=0)
    assert X.shape == Y.shape == (2000, 50)
    assert np.mean(np.sum(X**2, axis=1)) == pytest.approx(1.0, abs=0.02)
    assert np.mean(np.sum(Y**2, axis=1)) == pytest.approx(1.0, abs=0.02)
    assert abs(np.mean(X * Y) * 50) < 0.01  # independent


def test_sphere_patterns_have_unit_norm():
    X, Y = make_associations(30, 7, distribution="sphere", random_state=1)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1.0)
    Z = make_competitors(4, 7, n_competitors=5, distribution="sphere", random_state=2)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=2), 1.0)


def test_seeds_reproduce_and_differ():
    a = make_associations(5, 3, random_state=3)
    b = make_associations(5, 3, random_state=3)
    c = make_associations(5, 3, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])
    rng = np.random.default_rng(5)
    assert not np.allclose(
        make_associations(5, 3, random_state=rng)[0],
        make_associations(5, 3, random_state=rng)[0],
    )


def test_competitors_default_to_p_minus_one():
    assert make_competitors(6, 4, random_state=0).shape == (6, 5, 4)
    assert make_competitors(6, 4, n_competitors=2, random_state=0).shape == (6, 2, 4)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: make_associations(0, 3),
            ValueError,
            "n_patterns must be an integer >= 1",
        ),
        (lambda: make_associations(3, -2), ValueError, "n_features must be"),
        (lambda: make_associations(2.5, 3), TypeError, "n_patterns must be an integer"),
        (
            lambda: make_associations(True, 3),
            TypeError,
            "n_patterns must be an integer",
        ),
        (
            lambda: make_associations(3, 3, distribution="uniform"),
            ValueError,
            "distribution must be one of 'gaussian', 'sphere'; got 'uniform'",
        ),
        (lambda: make_associations(3, 3, random_state="x"), TypeError, "random_state"),
        (lambda: make_associations(3, 3, random_state=-1), ValueError, "random_state"),
        (
            lambda: make_associations(3, 3, random_state=True),
            TypeError,
            "must not be a bool",
        ),
        (lambda: make_competitors(1, 3), ValueError, "n_patterns >= 2"),
        (lambda: make_competitors(3, 3, n_competitors=0), ValueError, "n_competitors"),
    ],
)
def test_bad_sizes_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("constraints", ["coupled", "decoupled"])
def test_nested_pool_is_a_prefix_and_reproducible(constraints):
    seed = np.random.SeedSequence(7).spawn(3)[2]
    grown = NestedPool(4, constraints, "gaussian", seed)
    X9, Y9, Z9 = grown(9)
    X5, Y5, Z5 = grown(5)
    fresh = NestedPool(4, constraints, "gaussian", seed)(5)
    np.testing.assert_array_equal(X9[:5], X5)
    np.testing.assert_array_equal(Y9[:5], Y5)
    np.testing.assert_array_equal(X5, fresh[0])
    if constraints == "coupled":
        assert Z9 is None
    else:
        assert Z9.shape == (9, 8, 4)
        np.testing.assert_array_equal(Z9[:5, :4], Z5)
        np.testing.assert_array_equal(Z5, fresh[2])
