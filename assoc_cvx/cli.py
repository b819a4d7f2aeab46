"""Command-line interface: ``assoc-cvx capacity --dim D ...``."""

import argparse
import json
import math
import sys

from assoc_cvx import __version__
from assoc_cvx.capacity import find_capacity
from assoc_cvx.engine import SOLVERS
from assoc_cvx.exceptions import AssocCvxError
from assoc_cvx.patterns import DISTRIBUTIONS
from assoc_cvx.programs import CONSTRAINT_SETS

__all__ = ["main"]


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("expected a nonzero integer (-1: all cores)")
    return value


def build_parser():
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
    cap.add_argument("--dim", type=_positive_int, required=True, help="dimension d")
    cap.add_argument(
        "--constraints",
        choices=CONSTRAINT_SETS,
        default="coupled",
        help="constraint set (default: coupled)",
    )
    cap.add_argument(
        "--instances",
        type=_positive_int,
        default=20,
        help="number of random instances (default: 20)",
    )
    cap.add_argument("--seed", type=_seed, default=0, help="root seed (default: 0)")
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
        type=_jobs,
        default=1,
        help="instances solved in parallel; -1 for all cores (default: 1)",
    )
    cap.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="JSON-lines file of finished instances; rerunning resumes from it",
    )
    cap.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    cap.add_argument(
        "--quiet", action="store_true", help="no progress output on stderr"
    )
    return parser


def _fmt(x, digits=1):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.{digits}f}"


def format_report(result):
    """The human-readable summary table of a :class:`CapacityResult`."""
    s = result.summary()
    lo, hi = result.interval
    critical = " ".join(
        "?" if r.critical_p is None else str(r.critical_p) for r in result.instances
    )
    rows = [
        ("dimension d", str(s["n_features"])),
        ("constraints", s["constraints"]),
        ("distribution", s["distribution"]),
        ("instances (undecided)", f"{s['n_instances']} ({s['n_undecided']})"),
        ("capacity p_c (median)", _fmt(result.capacity)),
        (f"{round(100 * result.confidence)}% interval", f"[{_fmt(lo)}, {_fmt(hi)}]"),
        ("alpha = p_c ln p_c / d^2", _fmt(result.alpha, 3)),
        ("asymptote p_c (d -> inf)", f"{_fmt(result.asymptote)}  (alpha -> 0.5)"),
        ("critical p per instance", critical),
        ("seed", str(s["entropy"])),
        ("wall time", f"{s['elapsed']:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _capacity(args):
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
        solver=args.solver.lower() if args.solver == "AUTO" else args.solver,
        checkpoint=args.checkpoint,
        progress=progress_bar,
        callback=report,
    )
    print(format_report(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(), fh, indent=2)
        print(f"full result written to {args.json}")
    return 0


def main(argv=None):
    """Entry point of the ``assoc-cvx`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _capacity(args)
    except (AssocCvxError, ValueError, TypeError, OSError) as exc:
        parser.exit(2, f"assoc-cvx: error: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, "assoc-cvx: interrupted\n")


if __name__ == "__main__":
    sys.exit(main())
