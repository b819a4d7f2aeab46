"""Sweeps: speed-up of ``--jobs 2`` over ``--jobs 1``, Dask agreement, kill/resume.

Run from the repository root::

    python benchmarks/bench_sweep.py --quick     # smoke run, about 20 s
    python benchmarks/bench_sweep.py             # default profile, a few minutes

Three measurements, each on fresh result stores in a temporary directory:

1. ``speedup``: the same sweep (default: bisection of 40 instances at d = 12,
   coupled and decoupled) run by ``assoc-cvx sweep`` in a fresh process with
   ``--jobs 1`` and with ``--jobs 2``, alternately, ``--repeat`` times. The
   time is the sweep's own wall time as it prints it (from opening the store
   to the last commit, worker start-up included; the Python start-up before
   it is not). The speed-up is the ratio of the medians. The load average
   before and after is recorded: on a shared machine it is the main source
   of noise.
2. ``dask``: the same sweep on a Dask ``LocalCluster`` of two single-thread
   worker processes; its rows must equal those of ``--jobs 1`` (all columns
   but timings and the time of the row).
3. ``kill``: a 200-solve grid (d = 3, p = 3..7, 20 instances, both constraint
   sets) killed with SIGKILL at three random points and resumed; its rows must
   equal those of an uninterrupted run, exactly 200 of them.

Exit status 1 when rows differ. Results go to ``benchmarks/results/sweep.json``.
"""

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assoc_cvx.store import ResultStore  # noqa: E402
from assoc_cvx.sweep import run_sweep  # noqa: E402

SWEEP_CMD = [sys.executable, "-m", "assoc_cvx.cli", "sweep"]
RUN_COLUMNS = ("compile_time", "solve_time", "wall_time", "created_at")
GRID_200 = [
    "--dims",
    "3",
    "--constraints",
    "coupled,decoupled",
    "--p",
    "3,4,5,6,7",
    "--instances",
    "20",
]
ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def rows(path):
    with ResultStore(path, readonly=True) as store:
        return [
            {k: v for k, v in r.items() if k not in RUN_COLUMNS} for r in store.rows()
        ]


def cli(store, args, **kwargs):
    cmd = [*SWEEP_CMD, str(store), "--quiet"]
    return subprocess.run(
        [*cmd, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, **kwargs
    )


def timed_sweep(store, args):
    t0 = time.perf_counter()
    proc = cli(store, args, check=True)
    wall = time.perf_counter() - t0
    sweep = float(re.search(r"rows in .*, ([0-9.]+) s", proc.stdout).group(1))
    return sweep, wall


def speedup(tmp, grid, repeat):
    times = {1: [], 2: []}
    walls = {1: [], 2: []}
    for r in range(repeat):
        for jobs in (1, 2):
            store = tmp / f"speed_j{jobs}_{r}.sqlite"
            sweep, wall = timed_sweep(store, [*grid, "--jobs", str(jobs)])
            times[jobs].append(sweep)
            walls[jobs].append(wall)
            print(f"  jobs={jobs} run {r}: sweep {sweep:.2f} s (process {wall:.2f} s)")
    same = all(
        rows(tmp / f"speed_j1_{r}.sqlite") == rows(tmp / f"speed_j2_{r}.sqlite")
        for r in range(repeat)
    )
    n = len(rows(tmp / "speed_j1_0.sqlite"))
    ratio = float(np.median(times[1]) / np.median(times[2]))
    return {
        "solves": n,
        "jobs1_s": times[1],
        "jobs2_s": times[2],
        "jobs1_process_s": walls[1],
        "jobs2_process_s": walls[2],
        "speedup_median": ratio,
        "rows_identical": same,
    }


def dask_mode(tmp, grid_kwargs, reference):
    from distributed import LocalCluster

    store = tmp / "dask.sqlite"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        t0 = time.perf_counter()
        run_sweep(store, scheduler=cluster.scheduler_address, **grid_kwargs)
        elapsed = time.perf_counter() - t0
    same = rows(store) == rows(reference)
    return {"elapsed_s": elapsed, "rows_identical": same, "rows": len(rows(store))}


def kill_resume(tmp, seed):
    rng = np.random.default_rng(seed)
    reference = tmp / "kill_ref.sqlite"
    cli(reference, GRID_200, check=True)
    store = tmp / "killed.sqlite"
    kills = []
    for low, high in ((5, 60), (70, 130), (140, 190)):
        threshold = int(rng.integers(low, high))
        proc = subprocess.Popen(
            [*SWEEP_CMD, str(store), "--quiet", *GRID_200],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        count = 0
        while proc.poll() is None:
            try:
                conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
                count = conn.execute("SELECT COUNT(*) FROM solves").fetchone()[0]
                conn.close()
            except sqlite3.Error:
                count = 0
            if count >= threshold:
                time.sleep(rng.uniform(0, 0.02))
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with ResultStore(store, readonly=True) as s:
            kills.append({"threshold": threshold, "rows_after_kill": len(s)})
        print(f"  killed past {threshold} rows: {kills[-1]['rows_after_kill']} stored")
    cli(store, GRID_200, check=True)
    final = rows(store)
    return {
        "kills": kills,
        "rows": len(final),
        "rows_identical": final == rows(reference),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "sweep.json")
    )
    args = parser.parse_args()
    if args.quick:
        grid = ["--dims", "5", "--instances", "8", "--constraints", "coupled"]
        grid_kwargs = {"dims": [5], "n_instances": 8, "constraints": ["coupled"]}
        repeat = 1
    else:
        grid = [
            "--dims",
            "12",
            "--instances",
            "40",
            "--constraints",
            "coupled,decoupled",
        ]
        grid_kwargs = {
            "dims": [12],
            "n_instances": 40,
            "constraints": ["coupled", "decoupled"],
        }
        repeat = args.repeat
    out = {"grid": grid, "load_before": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("speed-up of --jobs 2 over --jobs 1:")
        out["speedup"] = speedup(tmp, grid, repeat)
        print(f"  median speed-up {out['speedup']['speedup_median']:.2f}x")
        print("Dask LocalCluster (2 worker processes):")
        out["dask"] = dask_mode(tmp, grid_kwargs, tmp / "speed_j1_0.sqlite")
        print(f"  {out['dask']}")
        print("SIGKILL three times, then resume (200 solves):")
        out["kill"] = kill_resume(tmp, seed=0)
        print(
            f"  {out['kill']['rows']} rows, identical: {out['kill']['rows_identical']}"
        )
    out["load_after"] = os.getloadavg()
    print(f"load average before {out['load_before']}, after {out['load_after']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    ok = (
        out["speedup"]["rows_identical"]
        and out["dask"]["rows_identical"]
        and out["kill"]["rows_identical"]
        and out["kill"]["rows"] == 200
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
