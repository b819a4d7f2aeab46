"""The capacity finder: exact critical p, statistics, resumption."""

import json

import numpy as np
import pytest

import assoc_cvx.capacity as capacity_module
from assoc_cvx import check_storage, find_capacity


def _linear_scan(result, index):
    """Critical p of one instance by solving every p from 2 upward."""
    p = 2
    while True:
        X, Y, Z = result.instance(index, p)
        verdict = check_storage(X, Y, competitors=Z).stored
        assert verdict is not None
        if not verdict:
            return p - 1
        p += 1


@pytest.mark.parametrize("constraints", ["coupled", "decoupled"])
def test_bisection_matches_a_linear_scan(constraints):
    result = find_capacity(5, constraints=constraints, n_instances=3, random_state=1)
    assert result.n_undecided == 0
    for i, outcome in enumerate(result.instances):
        assert outcome.critical_p == _linear_scan(result, i)
        assert outcome.verdicts[outcome.critical_p] is True
        assert outcome.verdicts[outcome.critical_p + 1] is False


def test_capacity_at_d10_matches_the_reference():
    # design notes §7: median 30 over 20 instances (range 28-36); RS 30-31.
    result = find_capacity(10, n_instances=20, random_state=0)
    assert 28 <= result.capacity <= 34
    lo, hi = result.interval
    assert lo <= result.capacity <= hi
    assert 0.8 < result.alpha < 1.3
    assert result.asymptote == pytest.approx(17.48, abs=0.01)


def test_statistics_are_consistent():
    result = find_capacity(4, n_instances=6, random_state=2)
    crit = result.critical_p
    assert result.capacity == np.median(crit)
    p, frac = result.curve
    assert frac[0] == 1.0
    assert frac[-1] == 0.0
    assert np.all(np.diff(frac) <= 0)
    for q, f in zip(p, frac, strict=True):
        assert f == np.mean(crit >= q)
    frame = result.to_frame()
    assert list(frame["critical_p"]) == list(crit.astype(int))
    json.dumps(result.to_dict())


def test_parallel_run_is_identical_to_serial():
    serial = find_capacity(5, constraints="decoupled", n_instances=4, random_state=3)
    parallel = find_capacity(
        5, constraints="decoupled", n_instances=4, random_state=3, n_jobs=2
    )
    assert [r.verdicts for r in serial.instances] == [
        r.verdicts for r in parallel.instances
    ]


def test_checkpoint_resumes_without_solving_again(tmp_path, monkeypatch):
    path = tmp_path / "run.jsonl"
    first = find_capacity(4, n_instances=3, random_state=4, checkpoint=path)
    assert len(path.read_text().splitlines()) == 3

    def no_solving(*args, **kwargs):
        raise AssertionError("a finished instance was solved again")

    monkeypatch.setattr(capacity_module, "decide", no_solving)
    again = find_capacity(4, n_instances=3, random_state=4, checkpoint=path)
    assert list(again.critical_p) == list(first.critical_p)
    assert len(path.read_text().splitlines()) == 3


def test_checkpoint_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "run.jsonl"
    first = find_capacity(4, n_instances=3, random_state=5, checkpoint=path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:15])
    with pytest.warns(RuntimeWarning, match="unreadable line 3"):
        again = find_capacity(4, n_instances=3, random_state=5, checkpoint=path)
    assert list(again.critical_p) == list(first.critical_p)


def test_checkpoint_keeps_runs_apart(tmp_path):
    path = tmp_path / "run.jsonl"
    find_capacity(4, n_instances=2, random_state=6, checkpoint=path)
    other = find_capacity(
        4, constraints="decoupled", n_instances=2, random_state=6, checkpoint=path
    )
    assert other.constraints == "decoupled"
    assert len(path.read_text().splitlines()) == 4


def test_callback_sees_every_instance():
    seen = []
    find_capacity(4, n_instances=3, random_state=7, callback=seen.append)
    assert sorted(o.index for o in seen) == [0, 1, 2]


def test_undecided_instances_are_reported_not_guessed(monkeypatch):
    original = capacity_module.decide

    def undecided_above_six(X, D, **kwargs):
        result = original(X, D, **kwargs)
        if X.shape[0] > 6:
            from dataclasses import replace

            return replace(result, stored=None, status="undecided")
        return result

    monkeypatch.setattr(capacity_module, "decide", undecided_above_six)
    with pytest.warns(UserWarning, match="have no exact critical p"):
        result = find_capacity(4, n_instances=2, random_state=8, p_max=12)
    for r in result.instances:
        if r.critical_p is None:
            assert r.lower == 6
    assert np.isnan(result.critical_p).any()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_features": 0}, ValueError, "n_features must be an integer >= 1"),
        ({"constraints": "both"}, ValueError, "constraints must be one of"),
        ({"n_instances": 0}, ValueError, "n_instances must be"),
        ({"distribution": "cube"}, ValueError, "distribution must be one of"),
        ({"solver": "mosek"}, ValueError, "solver must be one of"),
        ({"n_jobs": 0}, ValueError, "n_jobs must be"),
        ({"confidence": 1.5}, ValueError, "confidence must be"),
        ({"random_state": "seed"}, TypeError, "random_state must be"),
        ({"checkpoint": "x.jsonl"}, ValueError, "checkpoint needs a fixed"),
        ({"p_max": 1}, ValueError, "p_max must be"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    args = {"n_features": 4, "n_instances": 1, **kwargs}
    d = args.pop("n_features")
    with pytest.raises(error, match=match):
        find_capacity(d, **args)
