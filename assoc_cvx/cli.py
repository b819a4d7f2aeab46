"""Command-line interface: ``assoc-cvx capacity --dim D ...``."""

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
from assoc_cvx.capacity import CapacityResult, find_capacity
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
    return parser


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
        ("seed", str(s["entropy"])),
        ("wall time", f"{s['elapsed']:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _criterion_rows(result):
    """Report rows of a margin or listwise run, with its prediction."""
    from assoc_cvx.margin import _listwise_alpha, _rs_capacity

    d, rows = result.n_features, []
    if result.kappa > 0:
        rows.append(("margin kappa", f"{result.kappa:g}"))
    if result.retrieval == "listwise":
        alpha_c = float(_listwise_alpha(result.r, result.kappa))
        rows += [
            ("retrieval", f"listwise, r = {result.r:g}"),
            ("load p_c / d^2", _fmt(result.capacity / d**2, 3)),
            ("predicted alpha_c(r) d^2", f"{_fmt(alpha_c * d * d)}  (d -> inf)"),
        ]
    elif result.kappa > 0:
        pred = _rs_capacity(d * d, result.kappa)
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
    if args.kappa or args.listwise is not None or args.checkpoint:
        raise ValueError(
            "--two-layer does not combine with --kappa, --listwise or --checkpoint"
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
        return _capacity(args)
    except BrokenPipeError:
        # The reader went away (``assoc-cvx ... | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (AssocCvxError, ValueError, OSError) as exc:
        parser.exit(2, f"assoc-cvx: error: {exc}\n")
    except KeyboardInterrupt:
        resume = " (rerun the same command to resume)" if args.checkpoint else ""
        parser.exit(130, f"assoc-cvx: interrupted{resume}\n")
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":
    sys.exit(main())
