"""Sweeps: agreement with find_capacity, resume, parallel and Dask modes, faults."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest
from joblib import Parallel, delayed

import assoc_cvx.engine as engine
import assoc_cvx.sweep as sweep_module
from assoc_cvx import LinearAssociativeMemory, StorageWarning, find_capacity
from assoc_cvx.patterns import NestedPool
from assoc_cvx.results import instance_frame, storable_curves, summarise_store
from assoc_cvx.store import ResultStore
from assoc_cvx.sweep import patterns_at_alpha, run_sweep

ROOT = Path(__file__).resolve().parents[1]
#: Columns that differ between two runs of the same solves.
RUN_COLUMNS = ("compile_time", "solve_time", "wall_time", "created_at")
#: 200 cheap solves: 2 constraint sets x 5 values of p x 20 instances at d = 3.
SWEEP_200 = {
    "dims": [3],
    "constraints": ["coupled", "decoupled"],
    "p_values": [3, 4, 5, 6, 7],
    "n_instances": 20,
}
SWEEP_200_ARGS = [
    "--quiet",
    "--dims",
    "3",
    "--constraints",
    "coupled,decoupled",
    "--p",
    "3,4,5,6,7",
    "--instances",
    "20",
]


def _rows(path):
    with ResultStore(path, readonly=True) as store:
        return [
            {k: v for k, v in row.items() if k not in RUN_COLUMNS}
            for row in store.rows()
        ]


@pytest.fixture(scope="module")
def reference_200(tmp_path_factory):
    """The 200-solve sweep, run once without interruption."""
    path = tmp_path_factory.mktemp("ref") / "ref.sqlite"
    result = run_sweep(path, **SWEEP_200)
    assert result.n_rows == result.n_solved == 200
    return _rows(path)


def test_bisection_matches_find_capacity(tmp_path):
    path = tmp_path / "s.sqlite"
    result = run_sweep(path, dims=[4], constraints=["decoupled"], seeds=[7])
    capacity = find_capacity(4, constraints="decoupled", n_instances=20, random_state=7)
    inst = instance_frame(path)
    assert inst["critical_p"].tolist() == capacity.critical_p.astype(int).tolist()
    solved = {
        (i, p) for i, outcome in enumerate(capacity.instances) for p in outcome.verdicts
    }
    with ResultStore(path) as store:
        assert {(k[7], k[1]) for k in store.keys()} == solved
    assert result.n_rows == len(solved)
    assert result.undecided == ()
    summary = summarise_store(path)
    assert summary["p_c"].item() == capacity.capacity
    assert summary["exact"].item() == 20


def test_margin_bisection_matches_find_capacity(tmp_path):
    path = tmp_path / "s.sqlite"
    run_sweep(path, dims=[4], kappas=[0.0, 0.4], n_instances=6, seeds=[3])
    inst = instance_frame(path).sort_values("instance")
    for kappa in (0.0, 0.4):
        capacity = find_capacity(4, n_instances=6, random_state=3, kappa=kappa)
        got = inst[inst["kappa"] == kappa]["critical_p"].tolist()
        assert got == capacity.critical_p.astype(int).tolist()
    plain, margin = (
        inst[inst["kappa"] == k]["critical_p"].to_numpy() for k in (0, 0.4)
    )
    assert np.all(margin <= plain)
    assert np.any(margin < plain)


def test_rows_carry_parameters_evidence_and_versions(tmp_path):
    path = tmp_path / "s.sqlite"
    run_sweep(path, dims=[3], p_values=[2, 9], n_instances=2, rules=["max_margin"])
    import cvxpy

    import assoc_cvx

    rows = ResultStore(path).rows()
    assert len(rows) == 4
    for row in rows:
        assert row["package_version"] == assoc_cvx.__version__
        assert row["cvxpy_version"] == cvxpy.__version__
        assert row["decided_by"] in engine.SOLVERS
        assert row["solver_version"]
        assert row["wall_time"] > 0
        if row["verdict"] == "stored":
            assert row["margin"] > 0
            assert row["margin_lower"] > 0
        else:
            assert row["verdict"] == "not_storable"
            assert row["certificate"] <= engine.CERTIFICATE_TOL
    assert [r["verdict"] for r in rows if r["n_patterns"] == 2] == ["stored"] * 2
    assert [r["verdict"] for r in rows if r["n_patterns"] == 9] == ["not_storable"] * 2


def test_hebbian_rows_agree_with_the_estimator(tmp_path):
    path = tmp_path / "s.sqlite"
    run_sweep(path, dims=[6], p_values=[2, 3, 4, 6], rules=["hebbian"], n_instances=6)
    rows = ResultStore(path).rows()
    verdicts = {r["verdict"] for r in rows}
    assert verdicts == {"stored", "not_storable"}  # both answers occur
    for row in rows:
        assert row["solver"] == row["decided_by"] == "none"
        seed = np.random.SeedSequence(0, spawn_key=(row["instance"],))
        X, Y, _ = NestedPool(6, "coupled", "gaussian", seed)(row["n_patterns"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StorageWarning)
            model = LinearAssociativeMemory(rule="hebbian").fit(X, Y)
        assert model.stored_ == (row["verdict"] == "stored")
        assert row["margin"] == pytest.approx(model.margin_, rel=1e-9)


def test_interrupted_bisection_resumes_to_the_same_rows(tmp_path):
    reference = tmp_path / "ref.sqlite"
    run_sweep(reference, dims=[5], n_instances=6, seeds=[1])
    path = tmp_path / "s.sqlite"
    calls = []

    def stop_after_seven(row):
        calls.append(row)
        if len(calls) == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, dims=[5], n_instances=6, seeds=[1], callback=stop_after_seven)
    assert len(ResultStore(path)) == 7
    result = run_sweep(path, dims=[5], n_instances=6, seeds=[1])
    assert result.n_solved == len(_rows(reference)) - 7
    assert _rows(path) == _rows(reference)
    again = run_sweep(path, dims=[5], n_instances=6, seeds=[1])
    assert again.n_solved == 0
    assert again.n_units_done_before == 6


def _kill_at(store, threshold, rng, env):
    """Run the 200-solve sweep in a subprocess, SIGKILL it past ``threshold`` rows."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "assoc_cvx.cli", "sweep", str(store), *SWEEP_200_ARGS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    count = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists():
                try:
                    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
                    count = conn.execute("SELECT COUNT(*) FROM solves").fetchone()[0]
                    conn.close()
                except sqlite3.OperationalError:  # not created yet
                    count = 0
            if count >= threshold:
                time.sleep(rng.uniform(0, 0.02))  # anywhere, even mid-commit
                break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    return count


def test_sweep_killed_three_times_ends_with_the_same_200_rows(tmp_path, reference_200):
    rng = np.random.default_rng(6)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    store = tmp_path / "killed.sqlite"
    counts = []
    for low, high in ((5, 60), (70, 130), (140, 190)):
        counts.append(_kill_at(store, int(rng.integers(low, high)), rng, env))
        with ResultStore(store, readonly=True) as s:
            rows = len(s)
        assert rows < 200  # it really was killed before the end
        assert rows >= counts[-1]
    proc = subprocess.run(
        [sys.executable, "-m", "assoc_cvx.cli", "sweep", str(store), *SWEEP_200_ARGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "200 rows" in proc.stdout
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert _rows(store) == reference_200


def test_two_jobs_give_the_same_rows(tmp_path, reference_200):
    path = tmp_path / "j2.sqlite"
    result = run_sweep(path, n_jobs=2, **SWEEP_200)
    assert result.n_solved == 200
    assert _rows(path) == reference_200
    # The sweep's private pool leaves joblib's shared one usable.
    assert Parallel(n_jobs=2)(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]


def test_dask_cluster_gives_the_same_rows(tmp_path):
    distributed = pytest.importorskip("distributed")
    reference = tmp_path / "ref.sqlite"
    grid = {"dims": [4], "n_instances": 6, "constraints": ["coupled", "decoupled"]}
    run_sweep(reference, **grid)
    path = tmp_path / "dask.sqlite"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        result = run_sweep(path, scheduler=cluster.scheduler_address, **grid)
        assert result.n_solved == len(_rows(reference))
        with distributed.Client(cluster) as client:
            again = run_sweep(path, scheduler=client, **grid)
            assert client.status == "running"  # a client passed in stays open
    assert again.n_solved == 0
    assert _rows(path) == _rows(reference)


def test_alpha_grid_and_curves(tmp_path):
    path = tmp_path / "s.sqlite"
    run_sweep(path, dims=[4], alphas=[0.2, 3.0], n_instances=4, rules=["max_margin"])
    ps = sorted({r["n_patterns"] for r in ResultStore(path).rows()})
    assert ps == [patterns_at_alpha(0.2, 4), patterns_at_alpha(3.0, 4)] == [3, 17]
    curves = storable_curves(path)
    assert curves["fraction"].tolist() == [1.0, 0.0]
    assert curves["n_decided"].tolist() == [4, 4]
    alphas = [3 * np.log(3) / 16, 17 * np.log(17) / 16]
    assert curves["alpha"].tolist() == pytest.approx(alphas)


# -- faults: a misbehaving solver never yields a wrong verdict -------------------


def _inject(monkeypatch, fault, calls, only=None):
    """Make every cvxpy solver (or ``only`` that one) misbehave; record calls."""
    if fault == "raises":
        original_solve = cp.Problem.solve

        def failing_solve(problem, *args, solver=None, **kwargs):
            if only is not None and solver != only:
                return original_solve(problem, *args, solver=solver, **kwargs)
            calls.append(solver)
            raise cp.error.SolverError(f"{solver}: injected failure")

        monkeypatch.setattr(cp.Problem, "solve", failing_solve)
        return
    original = engine.solve_program

    def solve(program, name, options):
        out = original(program, name, options)
        if only is not None and name != only:
            return out
        calls.append(name)
        if fault == "inaccurate":
            return type(out)(cp.OPTIMAL_INACCURATE, out.compile_time, out.solve_time)
        # wrong_w: a W violating the margins and meaningless duals, "optimal"
        if program.W.value is not None:
            program.W.value = -program.W.value
        if program.margin_constraint.dual_value is not None:
            program.margin_constraint.dual_value[:] = 1.0
        return out

    monkeypatch.setattr(engine, "solve_program", solve)


@pytest.mark.parametrize("fault", ["raises", "inaccurate", "wrong_w"])
def test_every_cvxpy_solver_misbehaving_never_gives_a_wrong_verdict(
    tmp_path, reference_200, monkeypatch, fault
):
    calls = []
    _inject(monkeypatch, fault, calls)
    path = tmp_path / "faulty.sqlite"
    grid = {**SWEEP_200, "p_values": [3, 7], "n_instances": 5}
    result = run_sweep(path, solver="ECOS", **grid)
    assert calls  # the faults were really injected
    reference = {
        tuple(r[k] for k in ("n_patterns", "constraints", "instance")): r["verdict"]
        for r in reference_200
    }
    rows = _rows(path)
    assert len(rows) == 20
    for row in rows:
        truth = reference[(row["n_patterns"], row["constraints"], row["instance"])]
        # Never the opposite verdict. A decided row may still name a faulty
        # solver when the engine proved its verdict independently (for
        # instance a "not storable" confirmed in exact arithmetic).
        assert row["verdict"] in (truth, "undecided")
    undecided = [r for r in rows if r["verdict"] == "undecided"]
    assert len(result.undecided) == len(undecided)


def test_a_crashing_worker_stops_the_sweep_and_keeps_finished_rows(
    tmp_path, monkeypatch
):
    original = sweep_module.solve_one
    done = []

    def crash_on_third(task):
        done.append(task)
        if len(done) == 3:
            raise MemoryError("injected")
        return original(task)

    monkeypatch.setattr(sweep_module, "solve_one", crash_on_third)
    path = tmp_path / "s.sqlite"
    grid = {"dims": [3], "p_values": [3, 4, 5], "n_instances": 2}
    with pytest.raises(MemoryError, match="injected"):
        run_sweep(path, **grid)
    assert len(ResultStore(path)) == 2
    monkeypatch.setattr(sweep_module, "solve_one", original)
    assert run_sweep(path, **grid).n_solved == 4


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dims": [0]}, ValueError, "dims must be an integer >= 1; got 0"),
        ({"dims": []}, ValueError, "dims must list at least one value"),
        ({"dims": ["4"]}, TypeError, "dims must be an integer"),
        ({"rules": ["oja"]}, ValueError, "rules must be one of 'max_margin'"),
        ({"rules": ["hebbian"]}, ValueError, "cannot be bisected on p"),
        ({"constraints": ["both"]}, ValueError, "constraints must be one of"),
        ({"distributions": ["cauchy"]}, ValueError, "distributions must be one of"),
        ({"kappas": [-0.5]}, ValueError, "kappas .* must be a finite number >= 0"),
        ({"kappas": [float("inf")]}, ValueError, "must be a finite number >= 0"),
        (
            {"kappas": [0.5], "rules": ["hebbian"], "p_values": [3]},
            ValueError,
            "applies to rule 'max_margin' only",
        ),
        ({"seeds": [-1]}, ValueError, r"seeds must be integers in \[0, 2\*\*63\)"),
        ({"seeds": [2**63]}, ValueError, r"seeds must be integers in \[0, 2\*\*63\)"),
        ({"seeds": [1.5]}, TypeError, "seeds must be integers"),
        ({"p_values": [1]}, ValueError, "p_values must be an integer >= 2"),
        ({"alphas": [0.0]}, ValueError, "alphas must be positive"),
        ({"alphas": [float("nan")]}, ValueError, "alphas must be positive"),
        ({"n_instances": 0}, ValueError, "n_instances must be an integer >= 1"),
        ({"solver": "gurobi"}, ValueError, "solver must be one of"),
        ({"n_jobs": 0}, ValueError, "n_jobs must be None or a nonzero integer"),
        ({"p_max": 1}, ValueError, "p_max must be an integer >= 2"),
        ({"callback": 3}, TypeError, "callback must be callable"),
    ],
)
def test_bad_sweep_arguments_raise_before_anything_is_written(
    tmp_path, kwargs, error, match
):
    path = tmp_path / "s.sqlite"
    with pytest.raises(error, match=match):
        run_sweep(path, **{"dims": [3], **kwargs})
    assert not path.exists()


@pytest.mark.parametrize("fault", ["raises", "inaccurate", "wrong_w"])
def test_one_misbehaving_solver_falls_back_to_the_right_verdict(
    tmp_path, reference_200, monkeypatch, fault
):
    calls = []
    _inject(monkeypatch, fault, calls, only="ECOS")
    path = tmp_path / "faulty.sqlite"
    grid = {**SWEEP_200, "p_values": [3, 7], "n_instances": 5}
    result = run_sweep(path, solver="ECOS", **grid)
    assert set(calls) == {"ECOS"}
    assert result.undecided == ()
    reference = {
        tuple(r[k] for k in ("n_patterns", "constraints", "instance")): r["verdict"]
        for r in reference_200
    }
    for row in _rows(path):
        key = (row["n_patterns"], row["constraints"], row["instance"])
        assert row["verdict"] == reference[key]
        # A negated W never proves storage; uniform dual weights can still
        # lead the engine to its own proof of "not storable".
        if fault != "wrong_w" or row["verdict"] == "stored":
            assert row["decided_by"] != "ECOS"
        assert row["solver"] == "ECOS"  # the order asked for, not who decided


def test_retry_undecided_replaces_only_undecided_rows(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    grid = {"dims": [3], "p_values": [3, 7], "n_instances": 3, "solver": "ECOS"}
    calls = []
    _inject(monkeypatch, "inaccurate", calls, only="ECOS")
    monkeypatch.setattr(engine, "resolve_solvers", lambda solver: ["ECOS"])
    monkeypatch.setattr(sweep_module, "resolve_solvers", lambda solver: ["ECOS"])
    first = run_sweep(path, **grid)
    assert len(first.undecided) == 6  # ECOS alone, and it is never trusted
    monkeypatch.undo()
    assert run_sweep(path, **grid).n_solved == 0  # undecided rows count as done
    again = run_sweep(path, retry_undecided=True, **grid)
    assert again.n_solved == 6
    assert again.undecided == ()
    rows = _rows(path)
    assert len(rows) == 6
    assert {r["verdict"] for r in rows} == {"stored", "not_storable"}
    # A decided row is never replaced, even when asked to.
    with ResultStore(path) as store:
        row = {**store.rows()[0], "verdict": "undecided"}
        assert not store.insert(row, replace_undecided=True)
        assert store.rows()[0]["verdict"] != "undecided"


@pytest.mark.parametrize("rule", ["max_margin", "hebbian"])
def test_the_estimator_route_of_future_rules_agrees(rule):
    # Rules added to the estimator later are solved through it; check that
    # route on the rules it has today against their own routes.
    for p in (3, 9):
        X, Y, _ = NestedPool(3, "coupled", "gaussian", np.random.SeedSequence(4))(p)
        task = {
            "rule": rule,
            "solvers": ["ECOS"],
            "constraints": "coupled",
            "kappa": 0.0,
        }
        via_estimator = sweep_module._estimator_row(X, Y, task)
        D = Y[:, None, :] - Y[None, :, :]
        D = D[~np.eye(p, dtype=bool)].reshape(p, p - 1, 3)
        if rule == "hebbian":
            direct = sweep_module._hebbian_row(X, Y, D)
        else:
            direct = sweep_module._max_margin_row(
                X, D, {**task, "certificate_tol": engine.CERTIFICATE_TOL}
            )
        assert via_estimator["verdict"] == direct["verdict"]
