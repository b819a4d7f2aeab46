"""The capacity finder: exact critical p, statistics, resumption."""

import json
import os
import warnings
from dataclasses import replace

import numpy as np
import pytest

import assoc_cvx.capacity as capacity_module
from assoc_cvx import SolverWarning, check_storage, find_capacity
from assoc_cvx.exceptions import CapacityWarning, CheckpointWarning


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
    # README: at d = 10 the reference median over 20 instances is 30 (reference
    # range 28-36), and the finite-size replica-symmetric formula gives 30-31.
    result = find_capacity(10, n_instances=20, random_state=0)
    assert 28 <= result.capacity <= 36
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
    with pytest.warns(CheckpointWarning, match="Ignoring line 3 of checkpoint .*JSON"):
        again = find_capacity(4, n_instances=3, random_state=5, checkpoint=path)
    assert list(again.critical_p) == list(first.critical_p)
    # The recomputed instance went on a line of its own, after the torn one.
    last = json.loads(path.read_text().splitlines()[3])
    assert last["index"] == 2
    with pytest.warns(CheckpointWarning, match="Ignoring line 3") as record:
        find_capacity(4, n_instances=3, random_state=5, checkpoint=path)
    assert len(record) == 1


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
            return replace(result, stored=None, status="undecided")
        return result

    monkeypatch.setattr(capacity_module, "decide", undecided_above_six)
    with pytest.warns(SolverWarning, match="a verdict stayed undecided") as record:
        result = find_capacity(4, n_instances=2, random_state=8, p_max=12)
    assert not any("p_max" in str(w.message) for w in record)
    for r in result.instances:
        if r.critical_p is None:
            assert r.lower == 6
    assert np.isnan(result.critical_p).any()


def test_instances_reaching_p_max_are_not_blamed_on_the_solver():
    with pytest.warns(CapacityWarning, match="up to p_max=3") as record:
        result = find_capacity(4, n_instances=2, random_state=8, p_max=3)
    assert not any(issubclass(w.category, SolverWarning) for w in record)
    assert all(r.lower == 3 and r.upper is None for r in result.instances)


def test_d1_leaves_room_above_the_largest_storable_p():
    # With d = 1, W is a number: an input's target must be the largest or the
    # smallest of all targets, so at most 2 patterns are ever stored.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = find_capacity(1, n_instances=3, random_state=0)
    assert result.n_undecided == 0
    assert set(result.critical_p) <= {1, 2}


def test_next_p_keeps_to_p_max_and_gives_up_past_undecided_points():
    next_p = capacity_module._next_p
    # Growing: a step that overshoots p_max is cut to p_max, then nothing.
    assert next_p(10, None, {10: True}, 5, 4, 12) == 12
    assert next_p(12, None, {12: True}, 5, 4, 12) is None
    # Below a closed bracket every unsolved point is tried, bisecting.
    assert next_p(4, 9, {4: True, 9: False}, 5, 1, 20) == 6
    assert next_p(4, 7, {4: True, 5: None, 6: None, 7: False}, 5, 1, 20) is None
    # An undecided point with no upper end: a few points past it, then stop.
    assert next_p(4, None, {4: True, 5: None}, 5, 1, 20) == 6
    assert next_p(4, None, {4: True, 5: None, 6: None}, 5, 1, 20) == 7
    assert next_p(4, None, {4: True, 5: None, 6: None, 7: None}, 5, 1, 20) is None
    assert next_p(4, None, {4: True, 5: None, 6: None}, 5, 1, 6) is None


def _checkpoint_lines(tmp_path, n_instances=2):
    path = tmp_path / "run.jsonl"
    find_capacity(3, n_instances=n_instances, random_state=10, checkpoint=path)
    return path, [json.loads(line) for line in path.read_text().splitlines()]


def _no_solving(*args, **kwargs):
    raise AssertionError("an instance was solved")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"index": "0"}, "'index' must be an integer >= 0"),
        ({"index": -1}, "'index' must be an integer >= 0"),
        ({"index": True}, "'index' must be an integer >= 0"),
        ({"verdicts": [True, False]}, "'verdicts' must be an object"),
        ({"verdicts": {"three": True}}, "verdict key 'three' is not an integer"),
        ({"verdicts": {"1": True}}, "verdict key '1' is not an integer p >= 2"),
        ({"verdicts": {"3": 1}}, "verdict at p=3 must be true, false or null"),
        ({"verdicts": {"3": "yes"}}, "verdict at p=3 must be true, false or null"),
        ({"key": None, "index": None}, None),  # another run: skipped silently
    ],
)
def test_checkpoint_lines_of_the_wrong_type_are_ignored(
    tmp_path, monkeypatch, change, reason
):
    path, rows = _checkpoint_lines(tmp_path)
    bad = {**rows[0], **change}
    with path.open("a") as fh:
        fh.write(json.dumps(bad) + "\n")
    monkeypatch.setattr(capacity_module, "decide", _no_solving)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        again = find_capacity(3, n_instances=2, random_state=10, checkpoint=path)
    messages = [str(w.message) for w in record]
    if reason is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert f"Ignoring line 3 of checkpoint {str(path)!r}: {reason}" in messages[0]
        assert record[0].category is CheckpointWarning
    assert [r.verdicts for r in again.instances] == [
        {int(p): v for p, v in row["verdicts"].items()} for row in rows
    ]


@pytest.mark.parametrize("line", ["[1, 2]", '"text"', "3", "{}", "[[[[[[[[["])
def test_checkpoint_lines_that_are_not_rows_are_ignored(tmp_path, line):
    path, _ = _checkpoint_lines(tmp_path)
    with path.open("a") as fh:
        fh.write(line + "\n")
    with pytest.warns(CheckpointWarning, match="Ignoring line 3") as record:
        find_capacity(3, n_instances=2, random_state=10, checkpoint=path)
    assert len(record) == 1


def test_checkpoint_that_is_not_text_is_an_error(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ValueError, match=r"image\.png.*line 1 is not UTF-8"):
        find_capacity(3, n_instances=1, random_state=0, checkpoint=path)
    assert path.read_bytes() == b"\x89PNG\r\n\x1a\n\xff\xfe\x00"


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("missing/run.jsonl", FileNotFoundError),
        (".", IsADirectoryError),
    ],
)
def test_bad_checkpoint_path_fails_before_solving(tmp_path, monkeypatch, where, error):
    monkeypatch.setattr(capacity_module, "decide", _no_solving)
    with pytest.raises(error):
        find_capacity(3, n_instances=1, random_state=0, checkpoint=tmp_path / where)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user"
)
def test_unwritable_checkpoint_fails_before_solving(tmp_path, monkeypatch):
    path = tmp_path / "run.jsonl"
    path.write_text("")
    path.chmod(0o444)
    monkeypatch.setattr(capacity_module, "decide", _no_solving)
    with pytest.raises(PermissionError):
        find_capacity(3, n_instances=1, random_state=0, checkpoint=path)


@pytest.mark.skipif(not os.path.exists(os.devnull), reason="no null device")
def test_checkpoint_can_be_the_null_device():
    result = find_capacity(3, n_instances=2, random_state=0, checkpoint=os.devnull)
    assert result.n_undecided == 0


def test_settled_instances_are_not_sent_to_workers(tmp_path, monkeypatch):
    path, rows = _checkpoint_lines(tmp_path, n_instances=3)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["index"] != 1))
    solved = []
    original = capacity_module._bisect

    def recording(index, *args):
        solved.append(index)
        return original(index, *args)

    monkeypatch.setattr(capacity_module, "_bisect", recording)
    again = find_capacity(3, n_instances=3, random_state=10, checkpoint=path)
    assert solved == [1]
    assert [r.index for r in again.instances] == [0, 1, 2]
    assert again.instances[0].solve_time == 0.0


@pytest.mark.parametrize(
    ("n_jobs", "n_instances", "settled", "expected"),
    [(-1, 1, 0, [1]), (8, 3, 0, [3]), (2, 3, 2, [1]), (-1, 2, 2, [])],
)
def test_workers_never_outnumber_the_instances_left(
    tmp_path, monkeypatch, n_jobs, n_instances, settled, expected
):
    path, rows = _checkpoint_lines(tmp_path, n_instances=n_instances)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:settled]))
    workers = []
    original = capacity_module.Parallel

    def recording(n_jobs, **kwargs):
        workers.append(n_jobs)
        return original(n_jobs=n_jobs, **kwargs)

    monkeypatch.setattr(capacity_module, "Parallel", recording)
    find_capacity(
        3, n_instances=n_instances, random_state=10, n_jobs=n_jobs, checkpoint=path
    )
    assert workers == expected


def test_interrupted_run_resumes_to_the_same_verdicts(tmp_path):
    whole = find_capacity(4, n_instances=5, random_state=11)
    path = tmp_path / "run.jsonl"
    seen = []

    def killed_after_two(outcome):
        seen.append(outcome.index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        find_capacity(
            4,
            n_instances=5,
            random_state=11,
            checkpoint=path,
            callback=killed_after_two,
        )
    assert len(path.read_text().splitlines()) == 2
    resumed = find_capacity(4, n_instances=5, random_state=11, checkpoint=path)
    assert [r.verdicts for r in resumed.instances] == [
        r.verdicts for r in whole.instances
    ]
    assert list(resumed.critical_p) == list(whole.critical_p)
    assert len(path.read_text().splitlines()) == 5


def test_result_repr_and_canonical_solver_name():
    result = find_capacity(4, n_instances=3, random_state=0, solver="ecos")
    assert result.solver == "ECOS"
    text = repr(result)
    assert text.startswith("CapacityResult(capacity=")
    assert "n_instances=3, n_undecided=0, constraints='coupled', d=4)" in text
    assert "InstanceCapacity" not in text
    assert find_capacity(3, n_instances=1, random_state=0, solver="Auto").solver == (
        "auto"
    )


def test_interval_is_nan_with_too_few_instances():
    few = find_capacity(4, n_instances=3, random_state=0)
    assert np.isnan(few.interval).all()
    assert not np.isnan(few.capacity)
    enough = find_capacity(4, n_instances=6, random_state=0)
    assert np.isfinite(enough.interval).all()


@pytest.mark.parametrize(
    ("index", "error", "match"),
    [
        (3, ValueError, r"index must be an instance of this run, in \[0, 3\)"),
        (-1, ValueError, "index must be an integer >= 0"),
        (1.0, TypeError, "index must be an integer"),
    ],
)
def test_instance_rejects_a_bad_index(index, error, match):
    result = find_capacity(3, n_instances=3, random_state=0)
    with pytest.raises(error, match=match):
        result.instance(index, 3)


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
        ({"n_jobs": 1.5}, TypeError, "n_jobs must be"),
        ({"random_state": "seed"}, TypeError, "random_state must be"),
        ({"random_state": True}, TypeError, "random_state must be"),
        ({"random_state": -1}, ValueError, "random_state must be"),
        ({"checkpoint": "x.jsonl"}, ValueError, "checkpoint needs a fixed"),
        (
            {"checkpoint": "x.jsonl", "random_state": np.random.default_rng(0)},
            ValueError,
            "checkpoint needs a fixed",
        ),
        ({"checkpoint": 3, "random_state": 0}, TypeError, "checkpoint must be a"),
        ({"callback": "print"}, TypeError, "callback must be callable"),
        ({"p_max": 1}, ValueError, "p_max must be"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match, monkeypatch):
    monkeypatch.setattr(capacity_module, "decide", _no_solving)
    args = {"n_features": 4, "n_instances": 1, **kwargs}
    d = args.pop("n_features")
    with pytest.raises(error, match=match):
        find_capacity(d, **args)


@pytest.mark.parametrize(
    "random_state",
    [np.random.SeedSequence(1), np.random.default_rng(1), np.random.RandomState(1)],
)
def test_random_state_objects_give_a_reproducible_root(random_state):
    result = find_capacity(3, n_instances=2, random_state=random_state)
    again = find_capacity(3, n_instances=2, random_state=result.entropy)
    assert [r.verdicts for r in again.instances] == [
        r.verdicts for r in result.instances
    ]


def test_checkpoint_contradicting_nesting_is_recomputed(tmp_path):
    path = tmp_path / "run.jsonl"
    first = find_capacity(4, n_instances=1, random_state=9, checkpoint=path)
    row = json.loads(path.read_text().splitlines()[0])
    row["verdicts"] = {"5": False, "9": True}  # storable at 9 but not at 5
    path.write_text(json.dumps(row) + "\n")
    with pytest.warns(CheckpointWarning, match="storable at p=9 but not at p=5"):
        again = find_capacity(4, n_instances=1, random_state=9, checkpoint=path)
    assert list(again.critical_p) == list(first.critical_p)


# --- learning rules -------------------------------------------------------------


def _rule_linear_scan(result, index, rule, recall=1.0):
    """Largest p below the first at which the rule fails, scanning upward."""
    from assoc_cvx.rules import fit_rule, recalled

    p = 2
    while True:
        X, Y, Z = result.instance(index, p)
        ok = recalled(fit_rule(rule, X, Y, Z), X, Y, Z)
        if ok.sum() < np.ceil(recall * p - 1e-9):
            return p - 1
        p += 1


@pytest.mark.parametrize("constraints", ["coupled", "decoupled"])
@pytest.mark.parametrize("rule", ["hebbian", "pseudo_inverse"])
def test_rule_capacity_is_below_the_exact_one(constraints, rule):
    kwargs = {"constraints": constraints, "n_instances": 4, "random_state": 3}
    exact = find_capacity(6, **kwargs)
    learned = find_capacity(6, rule=rule, **kwargs)
    assert learned.rule == rule
    assert learned.summary()["rule"] == rule
    assert np.all(learned.critical_p <= exact.critical_p)
    # the rules fail well below the exact capacity at d = 6
    assert learned.capacity < exact.capacity


def test_gradient_capacity_is_below_the_exact_one_and_close():
    exact = find_capacity(5, n_instances=3, random_state=4)
    trained = find_capacity(
        5, n_instances=3, random_state=4, rule="gradient", rule_params={"max_iter": 500}
    )
    assert np.all(trained.critical_p <= exact.critical_p)
    assert trained.capacity >= 0.6 * exact.capacity


def test_rule_bisection_matches_a_linear_scan_for_hebbian():
    result = find_capacity(8, n_instances=3, random_state=5, rule="hebbian")
    for i, outcome in enumerate(result.instances):
        assert outcome.critical_p == _rule_linear_scan(result, i, "hebbian")


def test_partial_recall_capacity_is_at_least_full_recall():
    full = find_capacity(8, n_instances=4, random_state=6, rule="pseudo_inverse")
    part = find_capacity(
        8, n_instances=4, random_state=6, rule="pseudo_inverse", recall=0.8
    )
    assert part.recall == 0.8
    assert np.all(part.critical_p >= full.critical_p)
    assert part.capacity > full.capacity


def test_rule_checkpoints_are_kept_apart(tmp_path):
    path = tmp_path / "run.jsonl"
    exact = find_capacity(5, n_instances=2, random_state=7, checkpoint=path)
    hebb = find_capacity(
        5, n_instances=2, random_state=7, checkpoint=path, rule="hebbian"
    )
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 4
    assert sum(r["key"].get("rule") == "hebbian" for r in rows) == 2
    # resuming takes every verdict from the file
    again = find_capacity(
        5, n_instances=2, random_state=7, checkpoint=path, rule="hebbian"
    )
    np.testing.assert_array_equal(again.critical_p, hebb.critical_p)
    assert all(r.solve_time == 0 for r in again.instances)
    assert len(path.read_text().splitlines()) == 4
    assert not np.array_equal(exact.critical_p, hebb.critical_p)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rule": "oja"}, ValueError, "rule must be one of 'max_margin', 'hebbian'"),
        ({"rule": "hebbian", "recall": 0.0}, ValueError, r"recall must be .* \(0, 1\]"),
        ({"recall": 0.9}, ValueError, "recall must be 1.0 with rule='max_margin'"),
        (
            {"rule": "hebbian", "rule_params": {"max_iter": 3}},
            ValueError,
            "rule_params applies to rule='gradient' only",
        ),
        (
            {"rule": "gradient", "rule_params": {"steps": 3}},
            ValueError,
            "unknown gradient settings",
        ),
        (
            {
                "rule": "gradient",
                "rule_params": {"random_state": np.random.default_rng()},
            },
            TypeError,
            r"rule_params\['random_state'\] must be None or an int",
        ),
        (
            {"rule": "gradient", "rule_params": "x"},
            TypeError,
            "rule_params must be a dict of gradient settings or None; got 'x'",
        ),
        (
            {"rule": "gradient", "rule_params": [("max_iter", 3)]},
            TypeError,
            "rule_params must be a dict of gradient settings",
        ),
        ({"progress": "yes"}, TypeError, "progress must be True or False; got 'yes'"),
        ({"progress": 1}, TypeError, "progress must be True or False; got 1"),
    ],
)
def test_rule_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        find_capacity(4, n_instances=1, random_state=0, **kwargs)
