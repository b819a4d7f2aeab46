"""Shared fixtures: reference instances with known verdicts, tolerances, solvers."""

import json
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest

from assoc_cvx.engine import SOLVERS

DATA = Path(__file__).parent / "data"

#: Every numerical tolerance the tests use, in one place.
TOL = {
    # kappa* from the package against the reference file (two other solvers).
    "kappa_rtol": 1e-5,
    # max-margin W from the scale-free program against a direct QP solve.
    "max_margin_w_rtol": 1e-3,
    # the returned W is rescaled so that its smallest margin is one.
    "unit_margin_rtol": 1e-9,
    # soft-margin W from the estimator against a direct solve by the same solver
    # (ECOS agrees to about 1e-5 with itself on rescaled data).
    "soft_margin_w_rtol": 1e-4,
    # a fit on rescaled data, scaled back, against the fit on the original data.
    "rescaled_fit_rtol": 1e-6,
}

INSTALLED_SOLVERS = [s for s in SOLVERS if s == "IPM" or s in cp.installed_solvers()]


def solver_params(norm=None):
    """One ``pytest.param`` per storage solver, skipped (visibly) when missing.

    Parameters
    ----------
    norm : {"fro", "max"}, default=None
        Only the solvers given that norm ball in :data:`assoc_cvx.engine.SOLVERS`;
        None for all of them.
    """
    return [
        pytest.param(
            name,
            id=name,
            marks=pytest.mark.skipif(
                name not in INSTALLED_SOLVERS, reason=f"solver {name} is not installed"
            ),
        )
        for name, ball in SOLVERS.items()
        if norm is None or ball == norm
    ]


#: Every storage solver, for ``@pytest.mark.parametrize("solver", SOLVER_PARAMS)``.
SOLVER_PARAMS = solver_params()

#: The solvers reached through cvxpy (every one but the structured IPM), which
#: also solve the estimator's soft-margin program.
CVXPY_SOLVER_PARAMS = [param for param in SOLVER_PARAMS if param.values[0] != "IPM"]


def _load_reference():
    entries = json.loads((DATA / "nested_instances.json").read_text())
    arrays = np.load(DATA / "nested_instances.npz")
    out = []
    for e in entries:
        name = e["name"]
        z = arrays[f"{name}_Z"] if e["constraints"] == "decoupled" else None
        out.append(
            {
                **e,
                "X": arrays[f"{name}_X"],
                "Y": arrays[f"{name}_Y"],
                "Z": z,
                "verdicts": {int(p): v for p, v in e["verdicts"].items()},
            }
        )
    return out


REFERENCE = _load_reference()


def reference_instance(entry, p):
    """``(X, Y, competitors)`` of a reference entry at p patterns."""
    z = None if entry["Z"] is None else entry["Z"][:p, : p - 1]
    return entry["X"][:p], entry["Y"][:p], z


@pytest.fixture
def rng():
    return np.random.default_rng(20261203)
