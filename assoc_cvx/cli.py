"""Command-line interface: ``assoc-cvx capacity`` and ``assoc-cvx reproduce``."""

import argparse
import json
import math
import os
import sys
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
    cap.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    cap.add_argument(
        "--quiet", action="store_true", help="no progress output on stderr"
    )
    _add_reproduce_parser(sub)
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
    )
    print(format_report(result))
    if args.json is not None:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(), fh, indent=2)
        print(f"full result written to {args.json}")
    return 0


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
        if args.command == "reproduce":
            return _reproduce(args)
        return _capacity(args)
    except BrokenPipeError:
        # The reader went away (``assoc-cvx ... | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (AssocCvxError, ValueError, OSError) as exc:
        parser.exit(2, f"assoc-cvx: error: {exc}\n")
    except KeyboardInterrupt:
        resumable = getattr(args, "checkpoint", None) or args.command == "reproduce"
        resume = " (rerun the same command to resume)" if resumable else ""
        parser.exit(130, f"assoc-cvx: interrupted{resume}\n")
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":
    sys.exit(main())
