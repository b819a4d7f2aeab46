"""Closed-form predictions against independent computations."""

import numpy as np
import pytest
from scipy.optimize import brentq

from assoc_cvx.theory import asymptotic_capacity, capacity_alpha


@pytest.mark.parametrize("d", [1, 10, 20, 32, 100])
def test_asymptote_solves_p_log_p_equals_half_d_squared(d):
    expected = brentq(lambda p: p * np.log(p) - d * d / 2, 1.0 + 1e-12, d * d + 2.0)
    assert asymptotic_capacity(d) == pytest.approx(expected, rel=1e-10)
    assert capacity_alpha(asymptotic_capacity(d), d) == pytest.approx(0.5)


def test_asymptote_reference_values():
    # design notes §7: 17.5 at d = 10 and 50.9 at d = 20
    assert asymptotic_capacity(10) == pytest.approx(17.5, abs=0.05)
    assert asymptotic_capacity(20) == pytest.approx(50.9, abs=0.05)


def test_asymptote_rejects_bad_dimension():
    with pytest.raises(ValueError, match="n_features must be an integer >= 1"):
        asymptotic_capacity(0)
