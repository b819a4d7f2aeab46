"""The structured interior-point solver against cvxpy + ECOS and cvxpy + Clarabel.

Run from the repository root::

    python benchmarks/bench_ipm.py --quick        # smoke run, seconds
    python benchmarks/bench_ipm.py                # the issue's sizes, ~10 min
    python benchmarks/bench_ipm.py --large        # adds d=100 p=1200 (IPM only)
    python benchmarks/bench_ipm.py --cases 20:85:coupled:IPM,ECOS

Every cell is one ``check_storage(X, Y, competitors=..., solver=NAME,
fallback=False, mode=MODE)`` call in a fresh Python process, so that each
solver is timed on its own, its peak memory (``ru_maxrss`` of the process,
imports included) is its own, and a cell that exceeds ``--timeout`` is killed
and recorded as ``timeout`` instead of holding up the run. Every solver of a
case sees the same instance: ``make_associations(p, d, random_state=seed)``,
plus ``make_competitors(p, d, random_state=seed + 1)`` for the decoupled set.
BLAS is limited to ``--threads`` threads in every process (default 1: two
threads on a busy 2-core machine were up to 60 times slower).

Cells: ``IPM`` in both modes (``verdict``: stop at the first W proved to
store, or the first certificate; ``max_margin``: solve to optimality), and
``ECOS``/``CLARABEL`` (which always solve to optimality). Columns of the CSV
(default ``benchmarks/results/ipm.csv``): the case (``d, p, constraints,
seed, rows``), ``solver, mode``, ``status`` (``stored``, ``not_storable``,
``undecided``, ``timeout``, ``error``), ``compile_time`` and ``solve_time``
as the result reports them, ``wall_time`` of the whole call (the time used
for ratios), ``peak_rss`` in bytes, ``margin`` and ``certificate``, and
``speedup``: the wall time of this cell divided by that of the IPM in
verdict mode on the same case (so ECOS's 120 means the IPM was 120 times
faster), and ``agreement`` of the decided verdicts of the case. A JSON
sidecar records versions, git state, load averages and the arguments.

The exit status is 1 when two decided verdicts of a case disagree.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

#: (d, p, constraints, solvers) of each profile. Capacities: about 85 at d=20,
#: 265 at d=40, 480 at d=60, 1200 at d=100 (coupled).
PROFILES = {
    "quick": [
        (10, 30, "coupled", ("IPM", "ECOS", "CLARABEL")),
        (10, 34, "decoupled", ("IPM", "ECOS", "CLARABEL")),
    ],
    "default": [
        (20, 85, "coupled", ("IPM", "ECOS", "CLARABEL")),
        (20, 85, "decoupled", ("IPM", "ECOS", "CLARABEL")),
        (40, 265, "coupled", ("IPM", "CLARABEL")),
        (60, 480, "coupled", ("IPM",)),
    ],
    "large": [(100, 1200, "coupled", ("IPM",))],
}

COLUMNS = [
    "d",
    "p",
    "constraints",
    "seed",
    "rows",
    "solver",
    "mode",
    "status",
    "compile_time",
    "solve_time",
    "wall_time",
    "peak_rss",
    "margin",
    "certificate",
    "iterations",
    "speedup",
    "agreement",
    "message",
]


def _child(spec):
    """Run one cell in this process and print its row as JSON."""
    import numpy as np

    from assoc_cvx import check_storage, make_associations, make_competitors

    d, p, seed = spec["d"], spec["p"], spec["seed"]
    X, Y = make_associations(p, d, random_state=seed)
    Z = None
    if spec["constraints"] == "decoupled":
        Z = make_competitors(p, d, random_state=seed + 1)
    options = {"IPM": {"n_threads": spec["threads"]}}
    t0 = time.perf_counter()
    result = check_storage(
        X,
        Y,
        competitors=Z,
        solver=spec["solver"],
        fallback=False,
        mode=spec["mode"],
        solver_options=options if spec["solver"] == "IPM" else None,
    )
    wall = time.perf_counter() - t0
    iterations = [a.message.split(" ")[0] for a in result.attempts]
    row = {
        "status": result.status,
        "compile_time": result.compile_time,
        "solve_time": result.solve_time,
        "wall_time": wall,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "margin": np.nan if result.margin is None else result.margin,
        "certificate": result.certificate,
        "iterations": "+".join(iterations) if spec["solver"] == "IPM" else "",
        "message": "; ".join(a.message for a in result.attempts if a.message),
    }
    print(json.dumps(row, default=float))


def run_cell(spec, timeout):
    """Run one cell in a fresh process; a row of the CSV."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(spec["threads"])
    base = {k: spec[k] for k in ("d", "p", "constraints", "seed", "solver", "mode")}
    base["rows"] = spec["p"] * (spec["p"] - 1)
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {**base, "status": "timeout", "wall_time": float(timeout)}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        return {**base, "status": "error", "message": lines[-1]}
    return {**base, **json.loads(done.stdout.strip().splitlines()[-1])}


def summarise(rows):
    """Add speed-ups against the IPM verdict cell and agreement per case."""
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    df["speedup"] = df["speedup"].astype(float)
    df["agreement"] = df["agreement"].astype(object)
    case = ["d", "p", "constraints", "seed"]
    decided = df["status"].isin(["stored", "not_storable"])
    for _, group in df.groupby(case, sort=False):
        ipm = group[(group["solver"] == "IPM") & (group["mode"] == "verdict")]
        if len(ipm) and ipm["status"].iloc[0] in ("stored", "not_storable"):
            df.loc[group.index, "speedup"] = group["wall_time"] / float(
                ipm["wall_time"].iloc[0]
            )
        verdicts = set(group.loc[decided[group.index], "status"])
        df.loc[group.index, "agreement"] = (
            "agree" if len(verdicts) == 1 else "DISAGREE" if verdicts else "none"
        )
    return df


def format_table(df):
    lines = [
        f"{'d':>4} {'p':>5} {'constraints':<10} {'solver':<9} {'mode':<10} "
        f"{'verdict':<13} {'wall s':>9} {'peak MB':>8} {'x IPM':>8} {'iters':>6}"
    ]
    for row in df.itertuples():
        speed = "" if pd.isna(row.speedup) else f"{row.speedup:.1f}"
        peak = "" if pd.isna(row.peak_rss) else f"{row.peak_rss / 2**20:.0f}"
        iters = "" if pd.isna(row.iterations) else str(row.iterations)
        lines.append(
            f"{row.d:>4} {row.p:>5} {row.constraints:<10} {row.solver:<9} "
            f"{row.mode:<10} {row.status:<13} {row.wall_time:>9.3f} {peak:>8} "
            f"{speed:>8} {iters:>6}"
        )
    return "\n".join(lines)


def _cases(text):
    out = []
    for item in text.split(","):
        parts = item.split(":")
        if len(parts) < 3:
            raise argparse.ArgumentTypeError(
                f"case {item!r} must be d:p:constraints[:SOLVER+SOLVER...]"
            )
        solvers = tuple(parts[3].upper().split("+")) if len(parts) > 3 else ("IPM",)
        out.append((int(parts[0]), int(parts[1]), parts[2], solvers))
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--quick", action="store_true", help="smoke profile")
    profile.add_argument(
        "--cases",
        type=_cases,
        help="d:p:constraints[:IPM+ECOS+CLARABEL],... instead of a profile",
    )
    parser.add_argument(
        "--large", action="store_true", help="add d=100 p=1200 (IPM only)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per cell")
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/ipm.csv")
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0
    if args.quick:
        cases = PROFILES["quick"]
    elif args.cases:
        cases = args.cases
    else:
        cases = PROFILES["default"]
    if args.large:
        cases = cases + PROFILES["large"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    from bench_check_storage import git_state, versions

    rows = []
    started = time.time()
    for d, p, constraints, solvers in cases:
        for solver in solvers:
            modes = ("verdict", "max_margin") if solver == "IPM" else ("max_margin",)
            for mode in modes:
                spec = {
                    "d": d,
                    "p": p,
                    "constraints": constraints,
                    "seed": args.seed,
                    "solver": solver,
                    "mode": mode,
                    "threads": args.threads,
                }
                row = run_cell(spec, args.timeout)
                rows.append(row)
                print(
                    f"d={d} p={p} {constraints} {solver} {mode}: {row['status']} "
                    f"in {row.get('wall_time', float('nan')):.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
                # Written as it goes: an interrupted run keeps its cells.
                summarise(rows).to_csv(args.output, index=False)
    df = summarise(rows)
    df.to_csv(args.output, index=False)
    sidecar = {
        "versions": versions(),
        "git": git_state(),
        "arguments": {k: str(v) for k, v in vars(args).items() if k != "child"},
        "load_average": list(os.getloadavg()),
        "wall_time": time.time() - started,
    }
    args.output.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    print(format_table(df))
    print(f"\nwrote {args.output} and {args.output.with_suffix('.json')}")
    if (df["agreement"] == "DISAGREE").any():
        print("verdicts DISAGREE", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
