"""Time :func:`assoc_cvx.check_storage` per solver, with its verdicts.

Run from the repository root::

    python benchmarks/bench_check_storage.py --quick      # smoke run, seconds
    python benchmarks/bench_check_storage.py              # default profile
    python benchmarks/bench_check_storage.py --sizes 10:30,20:85 --repeat 3

The grid is sizes (d, p) x constraint sets x solvers. Every cell calls
``check_storage(X, Y, competitors=..., solver=NAME, fallback=False)``, so it
measures one solver on its own. One instance is drawn per size and constraint
set, and every solver in a cell sees that same instance:
``make_associations(p, d, random_state=seed)``, plus
``make_competitors(p, d, random_state=seed + 1)`` for the decoupled set.

Profiles
--------
``--quick``: d=6 p=10 (storable) and d=8 p=24 (near capacity; at seed 0 the
coupled instance is not storable), for a smoke run.
Default: instances near capacity, d=10 p=30 and p=34, d=16 p=62, d=20 p=85
(reference capacities p_c of about 30 at d=10, 62 at d=16, 85-88 at d=20, so
these are a mix of storable and unstorable instances, depending on the seed).

Each row of the CSV (default ``benchmarks/results/check_storage.csv``) holds:

- ``d, p, constraints, seed, rows, solver, repeat``: the cell; ``rows`` is the
  number of margin constraints p K.
- ``compile_time, solve_time``: cvxpy compilation and solver time as reported
  in the :class:`~assoc_cvx.StorageResult` (medians over the repeats).
- ``wall_time``: wall-clock seconds of the whole ``check_storage`` call
  (median): input checks, building the program, compiling, solving and the
  float64 check of the evidence. It is the time used for speed ratios, since
  solvers do not report the same things as ``solve_time`` (SCS, for one, keeps
  its setup and factorisation out of it).
- ``status``: the verdict, ``stored``, ``not_storable`` or ``undecided``;
  ``inconsistent`` when repeats of the cell disagree. ``solver_status`` is the
  status cvxpy reported.
- ``margin``: when stored, the smallest margin of ``W / ||W||_F``, recomputed
  in float64. For ECOS, Clarabel and SCS this is the best normalised margin
  kappa*; HiGHS solves the linear program with an entrywise bound on W, so its
  W is not the Frobenius optimum and its margin is only a lower bound on
  kappa*. ``margin_upper``: the certificate bound on kappa* from the dual
  weights (NaN when the solver gave none).
- ``reference``: the reference verdict of the instance, defined as the verdict
  reached by the strict majority of the solvers of this run that decided it
  (``stored`` or ``not_storable``; undecided and inconsistent cells do not
  vote). ``split`` on a tie, ``none`` when no solver decided. It is a
  consensus, not ground truth, and with a single solver it is that solver's
  own verdict.
- ``agreement``: ``agree`` or ``disagree`` with the reference, ``undecided``
  when the cell gave no verdict, ``no reference`` when there is none.
- ``speed_ratio``: ``wall_time`` over the fastest ``wall_time`` among the
  solvers of the same instance that agree with the reference (among all of
  them when none agrees), so 1.0 marks the fastest correct solver.
- ``message``: why the cell was undecided, or empty.

A JSON sidecar next to the CSV (same name, ``.json``) records the package
versions (assoc_cvx, cvxpy, numpy, scipy, each solver), the git commit of
the checkout, whether it had local changes and a hash of the uncommitted
package diff, the platform, the arguments, the BLAS thread limit, the load
average before and after the run and the total run time.

Before timing, each solver solves one tiny instance, untimed, so that import
and first-call costs do not land in the first cell. Timings are of a single
process on a possibly busy machine: compare solvers within one run (the speed
ratios) rather than absolute times across runs.
"""

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import cvxpy as cp
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import assoc_cvx
from assoc_cvx import (
    SOLVERS,
    AssocCvxError,
    SolverWarning,
    check_storage,
    make_associations,
    make_competitors,
)

PROFILES = {
    "quick": ((6, 10), (8, 24)),
    "default": ((10, 30), (10, 34), (16, 62), (20, 85)),
}
CONSTRAINT_SETS = ("coupled", "decoupled")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "check_storage.csv"
# Distribution names of the solvers, for the versions in the sidecar.
SOLVER_PACKAGES = {
    "ECOS": "ecos",
    "CLARABEL": "clarabel",
    "HIGHS": "highspy",
    "SCS": "scs",
}
DECIDED = ("stored", "not_storable")
COLUMNS = [
    "d",
    "p",
    "constraints",
    "seed",
    "rows",
    "solver",
    "repeat",
    "compile_time",
    "solve_time",
    "wall_time",
    "status",
    "solver_status",
    "margin",
    "margin_upper",
    "reference",
    "agreement",
    "speed_ratio",
    "message",
]


def installed_solvers():
    """Storage solvers that cvxpy can use here, in the package's order."""
    available = set(cp.installed_solvers())
    return [name for name in SOLVERS if name in available]


def _size(text):
    try:
        d, p = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a size is D:P with two integers, e.g. 10:30; got {text!r}"
        ) from None
    if d < 1 or p < 2:
        raise argparse.ArgumentTypeError(
            f"a size needs d >= 1 and p >= 2; got {text!r}"
        )
    return d, p


def _sizes(text):
    sizes = tuple(_size(part) for part in text.split(",") if part.strip())
    if not sizes:
        raise argparse.ArgumentTypeError(
            f"expected D:P sizes, e.g. 10:30; got {text!r}"
        )
    return sizes


def _choices(valid):
    def parse(text):
        names = [part.strip() for part in text.split(",") if part.strip()]
        by_key = {v.lower(): v for v in valid}
        unknown = [n for n in names if n.lower() not in by_key]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"choose from {', '.join(valid)} (comma-separated); got {text!r}"
            )
        return tuple(dict.fromkeys(by_key[n.lower()] for n in names))

    return parse


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer; got {text!r}"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}; got {value}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None):
    parser = _Parser(
        description="Time assoc_cvx.check_storage per solver and write CSV.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run (d:p = 6:10, 8:24)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        help="comma-separated D:P sizes, e.g. 10:30,20:85 (overrides the profile)",
    )
    parser.add_argument(
        "--solvers",
        type=_choices(tuple(SOLVERS)),
        help=f"comma-separated, from {', '.join(SOLVERS)} (default: all installed)",
    )
    parser.add_argument(
        "--constraints",
        type=_choices(CONSTRAINT_SETS),
        default=CONSTRAINT_SETS,
        help="comma-separated, from coupled, decoupled (default: both)",
    )
    parser.add_argument(
        "--seed", type=_int_at_least(0), default=0, help="instance seed (default: 0)"
    )
    parser.add_argument(
        "--repeat",
        type=_int_at_least(1),
        default=1,
        help="solves per cell; times are medians (default: 1)",
    )
    parser.add_argument(
        "--threads",
        type=_int_at_least(1),
        default=1,
        help="BLAS/OpenMP thread limit during the run (default: 1)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="CSV path; the JSON sidecar goes next to it "
        "(default: benchmarks/results/check_storage.csv)",
    )
    args = parser.parse_args(argv)
    installed = installed_solvers()
    if args.solvers is None:
        args.solvers = tuple(installed)
    missing = [s for s in args.solvers if s not in installed]
    if missing:
        parser.error(
            f"--solvers: {', '.join(missing)} not installed; "
            f"installed: {', '.join(installed) or 'none'}"
        )
    if not args.solvers:
        parser.error("no storage solver is installed")
    if args.sizes is None:
        args.profile = "quick" if args.quick else "default"
        args.sizes = PROFILES[args.profile]
    else:
        args.profile = "custom"
    if args.out.suffix.lower() != ".csv":
        parser.error(f"--out must end in .csv; got {str(args.out)!r}")
    return args


def make_instance(d, p, constraints, seed):
    """The (X, Y, competitors) of one cell; competitors is None when coupled."""
    X, Y = make_associations(p, d, random_state=seed)
    Z = (
        make_competitors(p, d, random_state=seed + 1)
        if constraints == "decoupled"
        else None
    )
    return X, Y, Z


def run_once(X, Y, Z, solver):
    """One timed ``check_storage`` call: (result or None, wall time, error)."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # An undecided verdict is recorded in the row; no need to warn too.
            warnings.simplefilter("ignore", SolverWarning)
            result = check_storage(X, Y, competitors=Z, solver=solver, fallback=False)
    except AssocCvxError as exc:
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    return result, time.perf_counter() - t0, ""


def run_cell(X, Y, Z, solver, repeat):
    """Medians of the timings over ``repeat`` solves, with the verdict."""
    runs = [run_once(X, Y, Z, solver) for _ in range(repeat)]
    results = [r for r, _, _ in runs]
    first = results[0]
    statuses = {"error" if r is None else r.status for r in results}
    if statuses == {"error"}:
        status = "undecided"
    elif len(statuses) == 1:
        status = statuses.pop()
    else:
        status = "inconsistent"
    if first is None:
        solver_status, margin, upper = "error", np.nan, np.nan
        message = runs[0][2]
    else:
        solver_status = first.solver_status
        margin = np.nan if first.margin is None else first.margin
        upper = first.margin_upper
        message = first.attempts[-1].message if first.attempts else ""
    timed = [r for r in results if r is not None]
    return {
        "compile_time": _median([r.compile_time for r in timed]),
        "solve_time": _median([r.solve_time for r in timed]),
        "wall_time": statistics.median(wall for _, wall, _ in runs),
        "status": status,
        "solver_status": solver_status,
        "margin": margin,
        "margin_upper": upper,
        "message": message,
    }


def _median(values):
    return statistics.median(values) if values else np.nan


def reference_verdict(statuses):
    """The verdict of the strict majority of the deciding solvers."""
    votes = [s for s in statuses if s in DECIDED]
    if not votes:
        return "none"
    counts = {v: votes.count(v) for v in DECIDED}
    best = max(counts, key=counts.get)
    return best if 2 * counts[best] > len(votes) else "split"


def add_reference(rows):
    """Fill ``reference``, ``agreement`` and ``speed_ratio`` of one instance."""
    reference = reference_verdict([row["status"] for row in rows])
    for row in rows:
        row["reference"] = reference
        if row["status"] not in DECIDED:
            row["agreement"] = "undecided"
        elif reference not in DECIDED:
            row["agreement"] = "no reference"
        else:
            row["agreement"] = "agree" if row["status"] == reference else "disagree"
    correct = [row["wall_time"] for row in rows if row["agreement"] == "agree"]
    fastest = min(correct or [row["wall_time"] for row in rows])
    for row in rows:
        row["speed_ratio"] = row["wall_time"] / fastest if fastest > 0 else np.nan


def warm_up(solvers):
    """Solve a tiny instance with each solver so first-call costs are not timed."""
    X, Y = make_associations(4, 3, random_state=0)
    for solver in solvers:
        run_once(X, Y, None, solver)


def run(args):
    """Run the grid; return the rows as a DataFrame."""
    cells = [(d, p, c) for d, p in args.sizes for c in args.constraints]
    rows = []
    with tqdm(
        total=len(cells) * len(args.solvers),
        desc="check_storage",
        unit="cell",
        file=sys.stderr,
        disable=None,
    ) as bar:
        for d, p, constraints in cells:
            X, Y, Z = make_instance(d, p, constraints, args.seed)
            instance = []
            for solver in args.solvers:
                bar.set_postfix_str(f"d={d} p={p} {constraints} {solver}")
                cell = run_cell(X, Y, Z, solver, args.repeat)
                instance.append(
                    {
                        "d": d,
                        "p": p,
                        "constraints": constraints,
                        "seed": args.seed,
                        "rows": p * (p - 1),
                        "solver": solver,
                        "repeat": args.repeat,
                        **cell,
                    }
                )
                bar.update()
            add_reference(instance)
            rows.extend(instance)
    return pd.DataFrame(rows, columns=COLUMNS)


def versions():
    """Versions of the package, cvxpy, numpy, scipy and every storage solver."""
    out = {"assoc_cvx": assoc_cvx.__version__}
    for name in ("cvxpy", "numpy", "scipy", *SOLVER_PACKAGES.values()):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state():
    """Commit of the package's checkout, and a hash of its uncommitted changes."""
    root = Path(assoc_cvx.__file__).resolve().parent.parent

    def git(*cmd):
        return subprocess.run(
            ["git", *cmd], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        diff = git("diff", "HEAD", "--", "assoc_cvx")
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--short")),
            # Identifies the uncommitted state of the package code timed here.
            "package_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()
            if diff
            else None,
        }
    except (OSError, subprocess.CalledProcessError):
        return None


def _load():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def format_table(df):
    """The rows as a readable text table."""
    table = df.assign(
        compile_s=df["compile_time"].map("{:.4f}".format),
        solve_s=df["solve_time"].map("{:.4f}".format),
        wall_s=df["wall_time"].map("{:.4f}".format),
        margin_=df["margin"].map(lambda m: "" if np.isnan(m) else f"{m:.3g}"),
        x_fastest=df["speed_ratio"].map("{:.2f}".format),
    )
    table = table[
        [
            "d",
            "p",
            "constraints",
            "solver",
            "compile_s",
            "solve_s",
            "wall_s",
            "x_fastest",
            "status",
            "solver_status",
            "margin_",
            "reference",
            "agreement",
        ]
    ].rename(columns={"margin_": "margin"})
    return table.to_string(index=False)


def format_ratios(df):
    """Per size and constraint set, each solver's wall time over the fastest.

    A ``?`` marks a solver that left the instance undecided, a ``!`` one that
    disagrees with the reference verdict.
    """
    marks = {"undecided": "?", "disagree": "!"}
    cells = df.assign(
        ratio=[
            f"{r:.2f}{marks.get(a, '')}"
            for r, a in zip(df["speed_ratio"], df["agreement"], strict=True)
        ]
    )
    pivot = cells.pivot(
        index=["d", "p", "constraints"], columns="solver", values="ratio"
    )
    pivot = pivot[list(dict.fromkeys(df["solver"]))]
    fastest = (
        df[df["speed_ratio"] == 1.0]
        .groupby(["d", "p", "constraints"])["solver"]
        .first()
        .rename("fastest")
    )
    return pivot.join(fastest).to_string()


def main(argv=None):
    args = parse_args(argv)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = _load()
    t0 = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        warm_up(args.solvers)
        df = run(args)
    elapsed = time.perf_counter() - t0

    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False, float_format="%.6g")
    sidecar = args.out.with_suffix(".json")
    meta = {
        "benchmark": "check_storage",
        "started": started,
        "elapsed_s": round(elapsed, 3),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "profile": args.profile,
        "sizes": [list(s) for s in args.sizes],
        "constraints": list(args.constraints),
        "solvers": list(args.solvers),
        "seed": args.seed,
        "repeat": args.repeat,
        "threads": args.threads,
        "versions": versions(),
        "git": git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": _load(),
        "csv": args.out.name,
    }
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")

    print(format_table(df))
    print()
    print("Wall time over the fastest agreeing solver of the same instance")
    print("(? undecided, ! disagrees with the reference verdict):")
    print(format_ratios(df))
    print()
    flagged = df[df["agreement"].isin(["undecided", "disagree"])]
    for row in flagged.itertuples():
        print(
            f"{row.agreement}: d={row.d} p={row.p} {row.constraints} {row.solver} "
            f"({row.status}, {row.solver_status}) {row.message}".rstrip()
        )
    undecided = int((df["agreement"] == "undecided").sum())
    disagree = int((df["agreement"] == "disagree").sum())
    print(
        f"{len(df)} cells in {elapsed:.1f} s; {disagree} disagree with the "
        f"reference, {undecided} undecided."
    )
    print(f"Wrote {args.out} and {sidecar.name}.")
    # A verdict that disagrees with the others is a bug: fail loudly.
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
