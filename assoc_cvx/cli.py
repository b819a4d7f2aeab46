"""Command-line interface: ``assoc-cvx capacity|reproduce|sweep|results|plot``."""

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from assoc_cvx import __version__
from assoc_cvx.capacity import CAPACITY_RULES, CapacityResult, find_capacity
from assoc_cvx.engine import SOLVERS
from assoc_cvx.exceptions import AssocCvxError
from assoc_cvx.patterns import DISTRIBUTIONS
from assoc_cvx.programs import CONSTRAINT_SETS
from assoc_cvx.theory import MAX_KAPPA

__all__ = ["main"]


def _integer(*, minimum=None, nonzero=False):
    """An argparse type: an integer, at least ``minimum``, nonzero if asked."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {value}"
            )
        if nonzero and value == 0:
            raise argparse.ArgumentTypeError(f"expected a nonzero integer, got {value}")
        return value

    return parse


def _real(check, expected):
    """An argparse type: a float satisfying ``check``."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {expected}, got {text!r}"
            ) from None
        if not (math.isfinite(value) and check(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


_nonnegative = _real(lambda v: v >= 0, "a number >= 0")
_positive = _real(lambda v: v > 0, "a number > 0")
_fraction = _real(lambda v: 0 < v <= 1, "a number in (0, 1]")
_margin = _real(lambda v: 0 < v <= MAX_KAPPA, f"a number in (0, {MAX_KAPPA:g}]")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``assoc-cvx``."""
    parser = argparse.ArgumentParser(
        prog="assoc-cvx",
        description="Exact storage capacity of linear associative memories.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser(
        "capacity",
        help="measure the capacity at one dimension",
        description=(
            "Find the exact critical p of random nested instances by bisection "
            "and report the median capacity with a confidence interval."
        ),
    )
    cap.add_argument(
        "--dim", type=_integer(minimum=1), required=True, help="dimension d"
    )
    cap.add_argument(
        "--constraints",
        choices=CONSTRAINT_SETS,
        default="coupled",
        help="constraint set (default: coupled)",
    )
    cap.add_argument(
        "--instances",
        type=_integer(minimum=1),
        default=20,
        help="number of random instances (default: 20)",
    )
    cap.add_argument(
        "--seed", type=_integer(minimum=0), default=0, help="root seed (default: 0)"
    )
    cap.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        default="gaussian",
        help="pattern distribution (default: gaussian)",
    )
    cap.add_argument(
        "--solver",
        default="auto",
        type=str.upper,
        choices=("AUTO", *SOLVERS),
        help="first solver tried (default: auto)",
    )
    cap.add_argument(
        "--jobs",
        type=_integer(nonzero=True),
        default=1,
        help="instances solved in parallel; -1 for all cores (default: 1)",
    )
    cap.add_argument(
        "--p-max",
        type=_integer(minimum=2),
        default=None,
        metavar="P",
        help="largest p tried (default: 2 d^2 + 2)",
    )
    cap.add_argument(
        "--rule",
        choices=CAPACITY_RULES,
        default="max_margin",
        help=(
            "max_margin: exact verdicts (default); a learning rule gives a lower "
            "bound (its W must recall the associations)"
        ),
    )
    cap.add_argument(
        "--recall",
        type=float,
        default=1.0,
        help="fraction a learning rule must recall, in (0, 1] (default: 1.0)",
    )
    cap.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="JSON-lines file of finished instances; rerunning resumes from it",
    )
    cap.add_argument(
        "--kappa",
        type=_nonnegative,
        default=0.0,
        metavar="K",
        help="required margin, in competitor-score standard deviations at "
        "||W||_F = d (default: 0)",
    )
    cap.add_argument(
        "--listwise",
        type=_fraction,
        default=None,
        metavar="R",
        help="listwise retrieval: beat the mean of the top R-fraction of "
        "competitors, 0 < R <= 1 (default: top-1)",
    )
    cap.add_argument(
        "--hidden-ratio",
        type=_positive,
        default=None,
        metavar="BETA",
        help="two-layer memory W2 W1 with hidden width round(BETA d); needs "
        "--two-layer",
    )
    cap.add_argument(
        "--two-layer",
        choices=("frozen", "trained"),
        default=None,
        help="frozen: random first layer, exact capacity; trained: also a "
        "lower bound with both layers trained, and the one-layer capacity",
    )
    cap.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    cap.add_argument(
        "--quiet", action="store_true", help="no progress output on stderr"
    )
    _add_reproduce_parser(sub)
    _add_sweep_parsers(sub)
    return parser


def _add_reproduce_parser(sub):
    from assoc_cvx.reproduce import PROFILES

    rep = sub.add_parser(
        "reproduce",
        help="sweep d, constraint sets and rules; write a report folder",
        description=(
            "Measure the capacity over a range of d for both constraint sets and "
            "every rule, compare with the replica-symmetric prediction and the "
            "asymptote, analyse the mechanism, and write report.md with PNG "
            "figures. Rerunning with the same folder resumes."
        ),
    )
    rep.add_argument(
        "--output",
        "-o",
        default="reproduce-results",
        metavar="DIR",
        help="folder to write (default: reproduce-results)",
    )
    rep.add_argument(
        "--quick",
        action="store_true",
        help=(
            "quick profile: d = "
            + ", ".join(map(str, PROFILES["quick"]["dims"]))
            + f", {PROFILES['quick']['n_instances']} instances (a few minutes)"
        ),
    )
    rep.add_argument(
        "--dims",
        type=_integer(minimum=2),
        nargs="+",
        metavar="D",
        help="dimensions (default: "
        + " ".join(map(str, PROFILES["default"]["dims"]))
        + ")",
    )
    rep.add_argument(
        "--instances",
        type=_integer(minimum=1),
        default=None,
        help=f"instances per cell (default: {PROFILES['default']['n_instances']})",
    )
    rep.add_argument(
        "--rules",
        nargs="+",
        choices=CAPACITY_RULES,
        default=list(CAPACITY_RULES),
        help="rules to measure (max_margin always runs; default: all)",
    )
    rep.add_argument(
        "--constraints",
        nargs="+",
        choices=CONSTRAINT_SETS,
        default=list(CONSTRAINT_SETS),
        help="constraint sets (default: both)",
    )
    rep.add_argument(
        "--seed", type=_integer(minimum=0), default=0, help="root seed (default: 0)"
    )
    rep.add_argument(
        "--solver",
        default=None,
        type=str.upper,
        choices=("AUTO", *SOLVERS),
        help="first solver of the exact verdicts (default: that of find_capacity)",
    )
    rep.add_argument(
        "--jobs",
        type=_integer(nonzero=True),
        default=1,
        help="instances solved in parallel; -1 for all cores (default: 1)",
    )
    rep.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="gradient rule: Adam step size (default: 0.1)",
    )
    rep.add_argument(
        "--steps",
        type=_integer(minimum=1),
        default=None,
        help="gradient rule: largest number of full-batch steps (default: 4000)",
    )
    rep.add_argument(
        "--kappas",
        type=_margin,
        nargs="+",
        default=[],
        metavar="K",
        help="also measure the capacity with these margins, each 0 < K <= "
        f"{MAX_KAPPA:g} (any number of them), against the RS prediction "
        "p_c(d, kappa) (default: none)",
    )
    rep.add_argument(
        "--listwise",
        type=_fraction,
        nargs="+",
        default=[],
        metavar="R",
        help="also measure the listwise capacity for these tail fractions "
        "0 < R <= 1, against alpha_c(R) d^2 (default: none)",
    )
    rep.add_argument(
        "--hidden-ratios",
        type=_positive,
        nargs="+",
        default=[],
        metavar="BETA",
        help="also measure two-layer memories of hidden width round(BETA d): "
        "frozen (exact), trained (lower bound), one layer (default: none)",
    )
    rep.add_argument(
        "--quiet", action="store_true", help="no progress output on stderr"
    )


def _reproduce(args):
    from assoc_cvx.reproduce import PROFILES, reproduce

    profile = PROFILES["quick" if args.quick else "default"]
    gradient = {}
    if args.learning_rate is not None:
        gradient["learning_rate"] = args.learning_rate
    if args.steps is not None:
        gradient["max_iter"] = args.steps
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {args.output} exists and is not a directory")

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    result = reproduce(
        out,
        dims=args.dims or profile["dims"],
        n_instances=args.instances or profile["n_instances"],
        constraint_sets=args.constraints,
        rules=args.rules,
        random_state=args.seed,
        n_jobs=args.jobs,
        solver=args.solver,
        gradient_params=gradient,
        kappas=args.kappas,
        listwise=args.listwise,
        hidden_ratios=args.hidden_ratios,
        log=log,
    )
    print(f"report written to {result.report} ({result.elapsed:.0f} s)")
    return 0


def _fmt(x, digits=1):
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:.{digits}f}"


def format_report(result: CapacityResult) -> str:
    """The human-readable summary table of a :class:`CapacityResult`."""
    s = result.summary()
    lo, hi = result.interval
    if math.isnan(result.capacity):
        interval = "n/a"
    elif math.isnan(lo) or math.isnan(hi):
        interval = "n/a (too few instances)"
    else:
        interval = f"[{_fmt(lo)}, {_fmt(hi)}]"
    critical = " ".join(
        "?" if r.critical_p is None else str(r.critical_p) for r in result.instances
    )
    rows = [
        ("dimension d", str(s["n_features"])),
        ("constraints", s["constraints"]),
        ("distribution", s["distribution"]),
        ("instances (not exact)", f"{s['n_instances']} ({s['n_undecided']})"),
        ("capacity p_c (median)", _fmt(result.capacity)),
        (f"{round(100 * result.confidence)}% interval", interval),
        ("alpha = p_c ln p_c / d^2", _fmt(result.alpha, 3)),
        ("asymptote p_c (d -> inf)", f"{_fmt(result.asymptote)}  (alpha -> 0.5)"),
        *_criterion_rows(result),
        ("critical p per instance", critical),
        *(
            [("rule (lower bound)", f"{s['rule']}, recall {s['recall']:g}")]
            if s.get("rule", "max_margin") != "max_margin"
            else []
        ),
        ("seed", str(s["entropy"])),
        ("wall time", f"{s['elapsed']:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _criterion_rows(result):
    """Report rows of a margin or listwise run, with its prediction."""
    from assoc_cvx.theory import listwise_alpha, rs_capacity

    d, rows = result.n_features, []
    if result.kappa > 0:
        rows.append(("margin kappa", f"{result.kappa:g}"))
    if result.retrieval == "listwise":
        alpha_c = listwise_alpha(result.r, result.kappa)
        rows += [
            ("retrieval", f"listwise, r = {result.r:g}"),
            ("load p_c / d^2", _fmt(result.capacity / d**2, 3)),
            ("predicted alpha_c(r) d^2", f"{_fmt(alpha_c * d * d)}  (d -> inf)"),
        ]
    elif result.kappa > 0:
        pred = rs_capacity(d, result.kappa)
        rows.append(("RS prediction p_c(d, kappa)", _fmt(pred)))
    return rows


def format_two_layer_report(result) -> str:
    """The summary table of a :class:`~assoc_cvx.two_layer.TwoLayerCapacity`."""
    s = result.summary()
    per = " ".join(
        "/".join("?" if v is None else str(v) for v in (i.frozen, i.trained))
        if result.mode == "trained"
        else ("?" if i.frozen is None else str(i.frozen))
        for i in result.instances
    )
    rows = [
        ("dimension d", str(s["n_features"])),
        ("hidden width k", f"{s['n_hidden']}  (beta = {s['hidden_ratio']:g})"),
        ("constraints", s["constraints"]),
        ("distribution", s["distribution"]),
        ("frozen layer p_c (exact)", _fmt(result.frozen)),
        ("beta/2 law p_c (d -> inf)", _fmt(result.beta_law)),
    ]
    if result.mode == "trained":
        rows += [
            ("trained p (lower bound)", _fmt(result.trained)),
            ("one layer p_c (exact)", _fmt(result.one_layer)),
            ("per instance frozen/trained", per),
        ]
    else:
        rows.append(("critical p per instance", per))
    rows += [("seed", str(s["entropy"])), ("wall time", f"{s['elapsed']:.1f} s")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _two_layer(args):
    from dataclasses import asdict

    from assoc_cvx.two_layer import find_two_layer_capacity

    if args.hidden_ratio is None or args.two_layer is None:
        raise ValueError("--hidden-ratio and --two-layer must be given together")
    given = {
        "--kappa": bool(args.kappa),
        "--listwise": args.listwise is not None,
        "--checkpoint": args.checkpoint is not None,
        "--rule": args.rule != "max_margin",
        "--recall": args.recall != 1.0,
    }
    if any(given.values()):
        raise ValueError(
            "--two-layer does not combine with --kappa, --listwise, --checkpoint, "
            f"--rule or --recall; got {', '.join(f for f, on in given.items() if on)}"
        )
    if args.json is not None:
        _check_output(args.json, "--json")
    result = find_two_layer_capacity(
        args.dim,
        args.hidden_ratio,
        mode=args.two_layer,
        constraints=args.constraints,
        n_instances=args.instances,
        random_state=args.seed,
        n_jobs=args.jobs,
        distribution=args.distribution,
        solver=args.solver,
        p_max=args.p_max,
    )
    print(format_two_layer_report(result))
    if args.json is not None:
        with open(args.json, "w", encoding="utf-8") as fh:
            data = {
                **result.summary(),
                "instances": [asdict(i) for i in result.instances],
            }
            json.dump(data, fh, indent=2)
        print(f"full result written to {args.json}")
    return 0


def _check_output(text, option):
    """Raise ValueError unless ``text`` names a file that can be written."""
    if not text:
        raise ValueError(f"{option} needs a file name; got an empty path")
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{option} {text} is a directory, not a file")
    parent = path.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {text}: directory {parent} does not exist")
    writable = (
        os.access(path, os.W_OK)
        if path.exists()
        else os.access(parent, os.W_OK | os.X_OK)
    )
    if not writable:
        raise ValueError(f"{option} {text} is not writable")
    return path


def _same_file(a, b):
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_outputs(args):
    """Check the output paths before anything is solved."""
    paths = {}
    for option, text in (("--json", args.json), ("--checkpoint", args.checkpoint)):
        if text is not None:
            paths[option] = _check_output(text, option)
    if len(paths) == 2 and _same_file(paths["--json"], paths["--checkpoint"]):
        raise ValueError("--json and --checkpoint must be different files")


def _capacity(args):
    if args.hidden_ratio is not None or args.two_layer is not None:
        return _two_layer(args)
    _check_outputs(args)
    progress_bar = not args.quiet and sys.stderr.isatty()
    done = []

    def report(outcome):
        done.append(outcome)
        if not args.quiet and not progress_bar:
            found = "?" if outcome.critical_p is None else outcome.critical_p
            print(
                f"[{len(done)}/{args.instances}] instance {outcome.index}: "
                f"critical p = {found} ({len(outcome.verdicts)} solves, "
                f"{outcome.solve_time:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    result = find_capacity(
        args.dim,
        constraints=args.constraints,
        n_instances=args.instances,
        random_state=args.seed,
        n_jobs=args.jobs,
        distribution=args.distribution,
        solver=args.solver,
        p_max=args.p_max,
        **(
            {}
            if args.rule == "max_margin" and args.recall == 1.0
            else {"rule": args.rule, "recall": args.recall}
        ),
        checkpoint=args.checkpoint,
        progress=progress_bar,
        callback=report,
        kappa=args.kappa,
        **(
            {"retrieval": "listwise", "r": args.listwise}
            if args.listwise is not None
            else {}
        ),
    )
    print(format_report(result))
    if args.json is not None:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(), fh, indent=2)
        print(f"full result written to {args.json}")
    return 0


def _listed(kind, *, choices=None, minimum=None):
    """An argparse type: a comma-separated list of ``kind`` values."""

    def parse(text):
        items = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in items):
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list, got {text!r}"
            )
        out = []
        for item in items:
            try:
                value = kind(item)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected {kind.__name__} values, got {item!r}"
                ) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise argparse.ArgumentTypeError(
                    f"expected finite numbers, got {item!r}"
                )
            if choices is not None and value not in choices:
                valid = ", ".join(map(str, choices))
                raise argparse.ArgumentTypeError(
                    f"invalid choice {item!r} (choose from {valid})"
                )
            if minimum is not None and value < minimum:
                raise argparse.ArgumentTypeError(
                    f"expected values >= {minimum}, got {item}"
                )
            out.append(value)
        return out

    return parse


def _add_sweep_parsers(sub):
    from assoc_cvx.sweep import SWEEP_RULES

    sweep = sub.add_parser(
        "sweep",
        help="run (or resume) a grid of solves into a result store",
        description=(
            "Solve every combination of dimension, constraint set, rule, margin "
            "and seed, bisecting each instance for its exact critical p (or at "
            "the given p or alpha), and commit each solve to an SQLite store. "
            "Rerunning the same command resumes: stored solves are skipped."
        ),
    )
    sweep.add_argument("store", metavar="STORE", help="SQLite result store (created)")
    sweep.add_argument(
        "--dims", type=_listed(int, minimum=1), required=True, help="e.g. 4,6,8"
    )
    sweep.add_argument(
        "--constraints",
        type=_listed(str, choices=CONSTRAINT_SETS),
        default=["coupled"],
        help="comma-separated (default: coupled)",
    )
    sweep.add_argument(
        "--distributions",
        type=_listed(str, choices=DISTRIBUTIONS),
        default=["gaussian"],
        help="comma-separated (default: gaussian)",
    )
    sweep.add_argument(
        "--rules",
        type=_listed(str, choices=SWEEP_RULES),
        default=["max_margin"],
        help="comma-separated (default: max_margin); bisection needs max_margin",
    )
    sweep.add_argument(
        "--margins",
        type=_listed(float),
        default=[0.0],
        metavar="KAPPAS",
        help="margins kappa >= 0, with rule max_margin (default: 0)",
    )
    sweep.add_argument(
        "--seeds",
        type=_listed(int, minimum=0),
        default=[0],
        help="root seeds, comma-separated (default: 0)",
    )
    sweep.add_argument(
        "--instances",
        type=_integer(minimum=1),
        default=20,
        help="instances per seed (default: 20)",
    )
    grid = sweep.add_mutually_exclusive_group()
    grid.add_argument(
        "--p",
        type=_listed(int, minimum=2),
        default=None,
        metavar="PS",
        help="solve at these numbers of patterns instead of bisecting",
    )
    grid.add_argument(
        "--alphas",
        type=_listed(float),
        default=None,
        help="solve at the p of these loads p ln p / d^2 instead of bisecting",
    )
    sweep.add_argument(
        "--solver",
        default="auto",
        type=str.upper,
        choices=("AUTO", *SOLVERS),
        help="first solver tried (default: auto)",
    )
    sweep.add_argument(
        "--p-max",
        type=_integer(minimum=2),
        default=None,
        metavar="P",
        help="largest p a bisection tries (default: 2 d^2 + 2)",
    )
    where = sweep.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=_integer(nonzero=True),
        default=1,
        help="local worker processes; -1 for all cores (default: 1)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address (e.g. tcp://host:8786) to run on",
    )
    sweep.add_argument(
        "--retry-undecided",
        action="store_true",
        help="solve stored undecided solves again, replacing their rows",
    )
    sweep.add_argument(
        "--quiet", action="store_true", help="no progress output on stderr"
    )

    results = sub.add_parser(
        "results",
        help="summarise a result store, export its rows",
        description="Print one line per curve of a result store; export rows.",
    )
    results.add_argument("store", metavar="STORE", help="SQLite result store")
    results.add_argument("--csv", metavar="PATH", help="write every row as CSV")
    results.add_argument(
        "--parquet", metavar="PATH", help="write every row as Parquet (pyarrow)"
    )

    plot = sub.add_parser(
        "plot",
        help="draw the fraction of storable instances against alpha",
        description="Draw capacity curves (fraction storable vs p ln p / d^2).",
    )
    plot.add_argument("store", metavar="STORE", help="SQLite result store")
    plot.add_argument(
        "-o", "--output", metavar="FILE", required=True, help="image file (.png)"
    )
    plot.add_argument("--title", default=None, help="figure title")


def _check_store_path(text):
    if not text:
        raise ValueError("STORE needs a file name; got an empty path")
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"STORE {text} is a directory, not a file")
    return path


def _existing_store(text):
    path = _check_store_path(text)
    if not path.exists():
        raise ValueError(f"STORE {text} does not exist")
    return path


def _sweep(args):
    from assoc_cvx.sweep import run_sweep

    _check_output(str(_check_store_path(args.store)), "STORE")
    progress_bar = not args.quiet and sys.stderr.isatty()
    state = {"solves": 0, "last": time.monotonic()}

    def report(row):
        state["solves"] += 1
        now = time.monotonic()
        if not args.quiet and not progress_bar and now - state["last"] >= 10:
            state["last"] = now
            print(
                f"[{state['solves']} solves] last: d={row['n_features']} "
                f"p={row['n_patterns']} {row['constraints']} {row['rule']} "
                f"seed {row['seed']} instance {row['instance']}: {row['verdict']}",
                file=sys.stderr,
                flush=True,
            )

    result = run_sweep(
        args.store,
        dims=args.dims,
        constraints=args.constraints,
        distributions=args.distributions,
        rules=args.rules,
        kappas=args.margins,
        seeds=args.seeds,
        n_instances=args.instances,
        p_values=args.p,
        alphas=args.alphas,
        solver=args.solver,
        p_max=args.p_max,
        n_jobs=args.jobs,
        scheduler=args.scheduler,
        retry_undecided=args.retry_undecided,
        progress=progress_bar,
        callback=report,
    )
    skipped = result.n_units_done_before
    print(
        f"{result.n_units} units ({skipped} done before), {result.n_solved} solves "
        f"now, {result.n_rows} rows in {args.store}, {result.elapsed:.1f} s"
    )
    n = len(result.undecided)
    print(f"undecided solves: {n}")
    for key in result.undecided[:20]:
        print(
            f"  d={key['n_features']} p={key['n_patterns']} {key['constraints']} "
            f"{key['distribution']} {key['rule']} seed {key['seed']} "
            f"instance {key['instance']} solver {key['solver']}"
        )
    if n > 20:
        print(f"  ... and {n - 20} more (assoc-cvx results {args.store} --csv FILE)")
    return 0


def _results(args):
    from assoc_cvx.results import export_store, summarise_store
    from assoc_cvx.store import ResultStore

    path = _existing_store(args.store)
    for option in ("csv", "parquet"):
        out = getattr(args, option)
        if out is not None:
            _check_output(out, f"--{option}")
    with ResultStore(path, readonly=True) as store:
        frame = store.to_frame()
    summary = summarise_store(frame)
    if summary.empty:
        print(f"{args.store}: no solves stored")
    else:
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if args.csv is not None:
        export_store(frame, args.csv, format="csv")
        print(f"{len(frame)} rows written to {args.csv}")
    if args.parquet is not None:
        export_store(frame, args.parquet, format="parquet")
        print(f"{len(frame)} rows written to {args.parquet}")
    return 0


def _plot(args):
    from assoc_cvx.results import plot_curves

    path = _existing_store(args.store)
    _check_output(args.output, "--output")
    plot_curves(path, args.output, title=args.title)
    print(f"plot written to {args.output}")
    return 0


_COMMANDS = {
    "capacity": _capacity,
    "reproduce": _reproduce,
    "sweep": _sweep,
    "results": _results,
    "plot": _plot,
}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Print a warning as one line on stderr, above any progress bar."""
    text = " ".join(str(message).split())
    tqdm.write(f"assoc-cvx: warning: {text}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``assoc-cvx`` console script.

    Parameters
    ----------
    argv : sequence of str, default=None
        Arguments without the program name; None reads ``sys.argv``.

    Returns
    -------
    code : int
        0 on success. Errors exit with status 2 (bad arguments, solver or
        file errors) or 130 (interrupted), after one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:
        # The reader went away (``assoc-cvx ... | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (AssocCvxError, ValueError, OSError, ImportError) as exc:
        text = " ".join(str(exc).split())
        parser.exit(2, f"assoc-cvx: error: {text}\n")
    except KeyboardInterrupt:
        resumable = getattr(args, "checkpoint", None) or args.command in (
            "reproduce",
            "sweep",
        )
        resume = " (rerun the same command to resume)" if resumable else ""
        parser.exit(130, f"assoc-cvx: interrupted{resume}\n")
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":
    sys.exit(main())
