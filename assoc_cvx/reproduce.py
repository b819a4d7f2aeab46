"""Reproduce the capacity results of arXiv 2605.10795 in one sweep.

:func:`reproduce` measures the capacity over a range of d for both
constraint sets and every rule, compares it with the finite-size
replica-symmetric prediction and the asymptote, analyses the mechanism at
one d, and writes a folder holding a markdown report, PNG figures, the
results as JSON and one checkpoint per (d, constraint set, rule), so that
an interrupted sweep resumes where it stopped. On request it also measures
the capacity with margins kappa > 0, under listwise retrieval and of
two-layer memories, each against its prediction.
"""

import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assoc_cvx._validation import check_int, check_positive, check_real
from assoc_cvx.analysis import (
    plot_scores,
    plot_spectrum,
    pool_scores,
    pool_spectra,
    score_analysis,
    singular_spectrum,
    support_constraints,
)
from assoc_cvx.capacity import CAPACITY_RULES, CapacityResult, find_capacity
from assoc_cvx.engine import check_storage
from assoc_cvx.margin import check_listwise, check_r, topk_recall
from assoc_cvx.programs import CONSTRAINT_SETS
from assoc_cvx.rules import check_rule_params, fit_rule
from assoc_cvx.theory import (
    MAX_KAPPA,
    asymptotic_capacity,
    capacity_alpha,
    listwise_alpha,
    rs_capacity,
)
from assoc_cvx.two_layer import find_two_layer_capacity

__all__ = ["PROFILES", "ReproduceResult", "reproduce"]

logger = logging.getLogger(__name__)

#: Sweep settings by profile name. ``"default"`` runs d = 10..40 (d = 40
#: needs the structured engine to finish in reasonable time).
PROFILES = {
    "quick": {"dims": (8, 10, 12), "n_instances": 8},
    "default": {"dims": (10, 16, 20, 24, 32, 40), "n_instances": 20},
}
#: Recall fractions at which the gradient rule is measured.
GRADIENT_RECALLS = (1.0, 0.99)
#: Instances (the first ones of each exact run) analysed for the mechanism.
MECHANISM_INSTANCES = 5
#: Agreement asked of the measured capacity (relative).
AGREEMENT = 0.05
#: Sections of the extensions, in the order they run and are reported.
EXTENSIONS = ("kappa", "listwise", "two_layer")


@dataclass(frozen=True)
class ReproduceResult:
    """Outcome of :func:`reproduce`.

    Attributes
    ----------
    output_dir : pathlib.Path
        Folder written.
    report : pathlib.Path
        The markdown report.
    rows : list of dict
        One row per (d, constraints, rule, recall): capacity, interval,
        alpha, RS prediction, asymptote, per-instance critical p.
    figures : dict of str to pathlib.Path
        PNG files by name.
    elapsed : float
        Wall-clock seconds.
    extensions : dict of str to list of dict
        Rows of the extensions that were run, by section (``"kappa"``,
        ``"listwise"``, ``"two_layer"``); empty when none was asked for.
    """

    output_dir: Path
    report: Path
    rows: list
    figures: dict
    elapsed: float
    extensions: dict = field(default_factory=dict)


def _cells(dims, constraint_sets, rules):
    for d in dims:
        for constraints in constraint_sets:
            for rule in rules:
                recalls = GRADIENT_RECALLS if rule == "gradient" else (1.0,)
                for recall in recalls:
                    yield d, constraints, rule, recall


def _instance_logger(say, name, n_instances):
    done = []

    def report(outcome):
        done.append(outcome)
        found = "?" if outcome.critical_p is None else outcome.critical_p
        say(f"  {name}: instance {len(done)}/{n_instances}, critical p {found}")

    return report


def _cell_name(d, constraints, rule, recall):
    suffix = "" if recall == 1.0 else f"_r{round(100 * recall)}"
    return f"d{d}_{constraints}_{rule}{suffix}"


def _row(result: CapacityResult, rs):
    lo, hi = result.interval
    p, frac = result.curve
    return {
        "d": result.n_features,
        "constraints": result.constraints,
        "rule": result.rule,
        "recall": result.recall,
        "capacity": _plain(result.capacity),
        "interval": [_plain(lo), _plain(hi)],
        "alpha": _plain(result.alpha),
        "rs": rs,
        "asymptote": result.asymptote,
        "n_instances": len(result.instances),
        "n_undecided": result.n_undecided,
        "critical_p": [r.critical_p for r in result.instances],
        "curve": {"p": p.tolist(), "fraction": frac.tolist()},
        "elapsed": result.elapsed,
    }


def _plain(x):
    x = float(x)
    return None if math.isnan(x) else x


def _write_json(path, data):
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def reproduce(
    output_dir: str | os.PathLike,
    *,
    dims: Sequence[int] = PROFILES["default"]["dims"],
    n_instances: int = PROFILES["default"]["n_instances"],
    constraint_sets: Sequence[str] = CONSTRAINT_SETS,
    rules: Sequence[str] = CAPACITY_RULES,
    random_state: int = 0,
    n_jobs: int | None = None,
    solver: str | None = None,
    gradient_params: dict | None = None,
    analysis_dim: int | None = None,
    kappas: Sequence[float] = (),
    listwise: Sequence[float] = (),
    hidden_ratios: Sequence[float] = (),
    log: Callable[[str], object] | None = None,
) -> ReproduceResult:
    """Run the capacity sweep and write the report folder.

    Parameters
    ----------
    output_dir : str or os.PathLike
        Folder to write (created if missing). Rerunning with the same
        folder and settings resumes from its checkpoints.
    dims : sequence of int, default=(10, 16, 20, 24, 32, 40)
        Dimensions d, each at least 2; at least one. Repeated values are
        measured once (as for every sequence argument below).
    n_instances : int, default=20
        Random nested instances per cell; the 95 % interval of the median
        needs at least 6.
    constraint_sets : sequence of {"coupled", "decoupled"}, default=both
        Constraint sets; at least one.
    rules : sequence of str, default=every rule
        Among ``"max_margin"`` (exact, always run: it is the reference),
        ``"hebbian"``, ``"pseudo_inverse"`` and ``"gradient"`` (measured at
        100 % and 99 % recall).
    random_state : int, default=0
        Root seed; every rule sees the same instances at a given d and
        constraint set, so their critical p compare instance by instance.
    n_jobs : int, default=None
        Instances solved in parallel (see :func:`find_capacity`).
    solver : str, default=None
        Solver of the exact verdicts; None uses the default of
        :func:`find_capacity` and :func:`check_storage`.
    gradient_params : dict, default=None
        Settings of the gradient rule (see
        :func:`assoc_cvx.rules.gradient_weights`).
    analysis_dim : int, default=None
        d at which the mechanism is analysed (scores, support, spectra);
        default the largest d of ``dims`` up to 16, else the smallest.
    kappas : sequence of float, default=()
        Margins kappa in (0, 10] (competitor-score standard deviations at
        ``||W||_F = d``). For each d, constraint set and kappa, the exact
        capacity ``find_capacity(d, kappa=kappa)`` (max-margin rule) is
        reported beside the replica-symmetric prediction
        :func:`assoc_cvx.theory.rs_capacity` ``(d, kappa)``. Empty: none.
    listwise : sequence of float, default=()
        Tail fractions r in (0, 1]. For each d, constraint set and r, the
        exact capacity under listwise retrieval (``find_capacity(d,
        retrieval="listwise", r=r)``) is reported as a load p_c / d^2
        beside :func:`assoc_cvx.theory.listwise_alpha` ``(r)``, with the
        top-1 and top-ceil(rK) recall of the max-margin listwise W at each
        instance's critical p. Empty: none.
    hidden_ratios : sequence of float, default=()
        Ratios beta > 0 of two-layer memories ``W2 W1`` of hidden width
        ``k = max(1, round(beta d))``. For each d, constraint set and beta,
        :func:`assoc_cvx.two_layer.find_two_layer_capacity` with
        ``mode="trained"`` gives the frozen-layer capacity (exact), the
        trained capacity (a lower bound) and the one-layer capacity of the
        same instances, reported with the beta/2 law and
        ``rs_capacity(d, n_hidden=k)``. Empty: none.
    log : callable, default=None
        Called with a one-line progress message as each cell finishes; None
        for no progress messages.

    Returns
    -------
    result : ReproduceResult

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong type or out of range (for instance a
        string where a sequence is expected, an empty ``dims`` or
        ``constraint_sets``), before anything is run or written.

    Notes
    -----
    Capacities of the learning rules are lower bounds found by bisection
    (see :func:`find_capacity`); the exact capacity uses certified verdicts.
    Results are written as they come: ``results.json`` after every cell,
    and each cell's instances to ``checkpoints/<cell>.jsonl``. The margin
    and listwise cells have their own such checkpoints; the two-layer
    capacity has no per-instance checkpoint, so each finished (d,
    constraint set, beta) cell is stored whole in
    ``checkpoints/<cell>.json`` (and the listwise recalls in
    ``checkpoints/<cell>_recall.json``) and reused by a rerun with the same
    settings. Without ``kappas``, ``listwise`` and ``hidden_ratios`` the
    sweep, ``report.md`` and ``results.json`` are those of the top-1 study
    alone.
    """
    start = time.perf_counter()
    dims = _check_values(
        dims, "dims", lambda d: check_int(d, "dims", minimum=2), kind="integers"
    )
    if not dims:
        raise ValueError("dims must hold at least one dimension.")
    n_instances = check_int(n_instances, "n_instances")
    random_state = check_int(random_state, "random_state", minimum=0)
    constraint_sets = _check_values(
        constraint_sets,
        "constraint_sets",
        lambda c: _check_member(c, "constraint_sets", CONSTRAINT_SETS),
        kind="strings",
    )
    if not constraint_sets:
        raise ValueError(
            "constraint_sets must hold at least one of "
            f"{', '.join(map(repr, CONSTRAINT_SETS))}; got none."
        )
    rules = _check_values(
        rules,
        "rules",
        lambda rule: _check_member(rule, "rules", CAPACITY_RULES),
        kind="strings",
    )
    rules = list(dict.fromkeys(["max_margin", *rules]))
    if log is not None and not callable(log):
        raise TypeError(
            f"log must be a callable taking one str, or None; got {log!r} of type "
            f"{type(log).__name__}."
        )
    gradient_params = check_rule_params(gradient_params, "gradient_params")
    kappas = _check_values(
        kappas,
        "kappas",
        lambda v: check_real(v, "kappas", low=0.0, high=MAX_KAPPA, low_open=True),
    )
    listwise = _check_values(listwise, "listwise", lambda v: check_r(v, "listwise"))
    hidden_ratios = _check_values(
        hidden_ratios, "hidden_ratios", lambda v: check_positive(v, "hidden_ratios")
    )
    if analysis_dim is None:
        small = [d for d in dims if d <= 16]
        analysis_dim = max(small) if small else min(dims)
    elif analysis_dim not in dims:
        raise ValueError(
            f"analysis_dim must be one of dims {dims}; got {analysis_dim}."
        )
    out = Path(output_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    say = log if log is not None else (lambda message: None)

    solver_arg = {} if solver is None else {"solver": solver}
    rs = {d: rs_capacity(d) for d in dims}
    rows, results = [], {}
    cells = list(_cells(dims, constraint_sets, rules))
    extra_cells = [
        (section, d, constraints, value)
        for section, values in zip(
            EXTENSIONS, (kappas, listwise, hidden_ratios), strict=True
        )
        for d in dims
        for constraints in constraint_sets
        for value in values
    ]
    n_cells = len(cells) + len(extra_cells)
    extensions = {}
    for i, (d, constraints, rule, recall) in enumerate(cells, 1):
        name = _cell_name(d, constraints, rule, recall)
        result = find_capacity(
            d,
            constraints=constraints,
            n_instances=n_instances,
            random_state=random_state,
            n_jobs=n_jobs,
            rule=rule,
            recall=recall,
            rule_params=gradient_params if rule == "gradient" else None,
            checkpoint=out / "checkpoints" / f"{name}.jsonl",
            callback=_instance_logger(say, name, n_instances),
            **solver_arg,
        )
        results[d, constraints, rule, recall] = result
        rows.append(_row(result, rs[d]))
        _write_json(out / "results.json", {"rows": rows})
        say(
            f"[{i}/{n_cells}] {name}: p_c = {result.capacity:g} "
            f"(RS {rs[d]:.1f}), {result.elapsed:.1f} s"
        )

    common = {
        "n_instances": n_instances,
        "random_state": random_state,
        "n_jobs": n_jobs,
        **solver_arg,
    }
    for i, (section, d, constraints, value) in enumerate(extra_cells, len(cells) + 1):
        name = _extension_name(section, d, constraints, value)
        exact = _find(rows, d, constraints, "max_margin")
        run = {
            "kappa": _kappa_cell,
            "listwise": _listwise_cell,
            "two_layer": _two_layer_cell,
        }[section]
        row, message = run(out, name, d, constraints, value, exact, say, common)
        extensions.setdefault(section, []).append(row)
        _write_json(out / "results.json", {"rows": rows, **extensions})
        say(f"[{i}/{n_cells}] {name}: {message}")

    say(f"analysing the mechanism at d = {analysis_dim}")
    mechanism = _mechanism(
        results, analysis_dim, constraint_sets, solver_arg, gradient_params
    )
    figures = _figures(out, rows, results, mechanism, dims, constraint_sets, rules)
    elapsed = time.perf_counter() - start
    report = out / "report.md"
    report.write_text(
        _report(
            rows,
            mechanism,
            figures,
            dims=dims,
            n_instances=n_instances,
            constraint_sets=constraint_sets,
            rules=rules,
            random_state=random_state,
            gradient_params=gradient_params,
            elapsed=elapsed,
            extensions=extensions,
        )
    )
    _write_json(
        out / "results.json",
        {"rows": rows, "mechanism": _jsonable_mechanism(mechanism), **extensions},
    )
    return ReproduceResult(
        output_dir=out,
        report=report,
        rows=rows,
        figures=figures,
        elapsed=elapsed,
        extensions=extensions,
    )


def _check_values(values, name, check, *, kind="numbers"):
    """The distinct values of a sequence, each passed through ``check``.

    Repeated values are dropped silently, the first occurrence kept. A
    string or a scalar (not a sequence of ``kind``) raises a TypeError.
    """
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(
            f"{name} must be a sequence of {kind}; got {values!r} of type "
            f"{type(values).__name__}."
        )
    return list(dict.fromkeys(check(v) for v in values))


def _check_member(value, name, options):
    """Return ``value`` if it is one of ``options``, else raise naming them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"{name} must be among {', '.join(map(repr, options))}; got {value!r}."
        )
    return value


def _extension_name(section, d, constraints, value):
    label = {"kappa": "kappa", "listwise": "listwise_r", "two_layer": "two_layer_beta"}
    return f"d{d}_{constraints}_{label[section]}{value:g}"


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _measured(result: CapacityResult):
    """The fields of a capacity run that every extension row carries."""
    lo, hi = result.interval
    return {
        "capacity": _plain(result.capacity),
        "interval": [_plain(lo), _plain(hi)],
        "n_instances": len(result.instances),
        "n_undecided": result.n_undecided,
        "critical_p": [r.critical_p for r in result.instances],
        "elapsed": result.elapsed,
    }


def _read_cell(path, key):
    """The stored value of a finished cell, or None (missing, other settings)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring %s, which cannot be read (%s)", path, exc)
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    return data.get("value")


def _kappa_cell(out, name, d, constraints, kappa, exact, say, common):
    result = find_capacity(
        d,
        constraints=constraints,
        kappa=kappa,
        checkpoint=out / "checkpoints" / f"{name}.jsonl",
        callback=_instance_logger(say, name, common["n_instances"]),
        **common,
    )
    predicted = rs_capacity(d, kappa)
    measured = _measured(result)
    row = {
        "d": d,
        "constraints": constraints,
        "kappa": kappa,
        **measured,
        "rs": predicted,
        "ratio": _ratio(measured["capacity"], predicted),
        "capacity_kappa0": exact["capacity"],
    }
    return (
        row,
        f"p_c = {result.capacity:g} (RS {predicted:.1f}), {result.elapsed:.1f} s",
    )


def _listwise_cell(out, name, d, constraints, r, exact, say, common):
    result = find_capacity(
        d,
        constraints=constraints,
        retrieval="listwise",
        r=r,
        checkpoint=out / "checkpoints" / f"{name}.jsonl",
        callback=_instance_logger(say, name, common["n_instances"]),
        **common,
    )
    measured = _measured(result)
    alpha_c = listwise_alpha(r)
    predicted = alpha_c * d * d
    recall = _listwise_recall(
        result, r, out / "checkpoints" / f"{name}_recall.json", measured
    )
    row = {
        "d": d,
        "constraints": constraints,
        "r": r,
        **measured,
        "load": None if measured["capacity"] is None else measured["capacity"] / d**2,
        "alpha_c": alpha_c,
        "prediction": predicted,
        "ratio": _ratio(measured["capacity"], predicted),
        **recall,
        "capacity_top1": exact["capacity"],
    }
    message = (
        f"p_c = {result.capacity:g} (alpha_c(r) d^2 = {predicted:.1f}), "
        f"{result.elapsed:.1f} s"
    )
    return row, message


def _listwise_recall(result, r, path, measured):
    """Mean top-1 and top-ceil(rK) recall of the listwise W at critical p.

    The max-margin listwise W of each instance at its critical p is solved
    again (one solve per instance); the means are stored in ``path`` with
    the critical p they were computed at, and reused while those agree.
    """
    key = {
        "entropy": str(result.entropy),
        "constraints": result.constraints,
        "r": r,
        "critical_p": measured["critical_p"],
    }
    cached = _read_cell(path, key)
    if cached is not None:
        return cached
    top1, topq = [], []
    for index, outcome in enumerate(result.instances):
        p = outcome.critical_p
        if p is None or p < 2:
            continue
        X, Y, Z = result.instance(index, p)
        verdict = check_listwise(X, Y, r=r, competitors=Z)
        if not verdict.stored:
            logger.warning(
                "listwise instance %d at p=%d not stored on a re-solve", index, p
            )
            continue
        q = max(1, math.ceil(r * (p - 1)))
        top1.append(topk_recall(verdict.W, X, Y, 1, competitors=Z))
        topq.append(topk_recall(verdict.W, X, Y, q, competitors=Z))
    value = {
        "top1_recall": float(np.mean(top1)) if top1 else None,
        "topq_recall": float(np.mean(topq)) if topq else None,
        "n_recall": len(top1),
    }
    _write_json(path, {"key": key, "value": value})
    return value


def _two_layer_logger(say, name, n_instances):
    done = []

    def report(outcome):
        done.append(outcome)
        say(
            f"  {name}: instance {len(done)}/{n_instances}, frozen "
            f"{outcome.frozen}, trained {outcome.trained}, one layer "
            f"{outcome.one_layer}"
        )

    return report


def _two_layer_cell(out, name, d, constraints, beta, exact, say, common):
    path = out / "checkpoints" / f"{name}.json"
    settings = {k: v for k, v in common.items() if k != "n_jobs"}
    key = {
        "n_features": d,
        "hidden_ratio": beta,
        "constraints": constraints,
        "mode": "trained",
        **settings,
    }
    value = _read_cell(path, key)
    resumed = value is not None
    if not resumed:
        result = find_two_layer_capacity(
            d,
            beta,
            mode="trained",
            constraints=constraints,
            callback=_two_layer_logger(say, name, common["n_instances"]),
            **common,
        )
        value = {
            **result.summary(),
            "instances": [asdict(i) for i in result.instances],
        }
        _write_json(path, {"key": key, "value": value})
    k = value["n_hidden"]
    instances = value["instances"]
    complete = [
        i for i in instances if None not in (i["frozen"], i["trained"], i["one_layer"])
    ]
    n_ordered = sum(i["frozen"] <= i["trained"] <= i["one_layer"] for i in complete)
    rs_frozen = rs_capacity(d, n_hidden=k)
    row = {
        "d": d,
        "constraints": constraints,
        "beta": beta,
        "k": k,
        "frozen": value["frozen"],
        "trained": value["trained"],
        "one_layer": value["one_layer"],
        "per_instance": [
            [i["frozen"], i["trained"], i["one_layer"], i["trained_method"]]
            for i in instances
        ],
        "n_instances": len(instances),
        "n_ordered": n_ordered,
        "n_undecided": len(instances) - len(complete),
        "ordered": n_ordered == len(instances),
        "beta_law": value["beta_law"],
        "rs_frozen": rs_frozen,
        "frozen_ratio": _ratio(value["frozen"], rs_frozen),
        "rs_one_layer": rs_capacity(d),
        "exact_one_layer": exact["capacity"],
        "elapsed": value["elapsed"],
    }
    message = (
        f"frozen {_fmt(value['frozen'])}, trained >= {_fmt(value['trained'])}, "
        f"one layer {_fmt(value['one_layer'])}, "
        + ("stored cell reused" if resumed else f"{value['elapsed']:.1f} s")
    )
    return row, message


def _mechanism(results, d, constraint_sets, solver_arg, gradient_params):
    """Scores, support and spectra of the first instances at their critical p."""
    found = {}
    for constraints in constraint_sets:
        exact = results[d, constraints, "max_margin", 1.0]
        parts = {"scores": {}, "spectra": {}, "support": [], "p": []}
        for index, outcome in enumerate(exact.instances[:MECHANISM_INSTANCES]):
            p = outcome.critical_p
            if p is None or p < 3:
                continue
            X, Y, Z = exact.instance(index, p)
            verdict = check_storage(X, Y, competitors=Z, **solver_arg)
            if not verdict.stored:
                logger.warning("instance %d at p=%d not stored on a re-solve", index, p)
                continue
            memories = {
                "optimal": verdict.W,
                "Hebbian": fit_rule("hebbian", X, Y, Z),
                "gradient": fit_rule("gradient", X, Y, Z, gradient_params),
            }
            for name, W in memories.items():
                parts["scores"].setdefault(name, []).append(score_analysis(W, X, Y, Z))
                parts["spectra"].setdefault(name, []).append(singular_spectrum(W))
            if verdict.max_margin:
                parts["support"].append(
                    support_constraints(verdict.W, X, Y, Z, tol=1e-5)
                )
            parts["p"].append(p)
        if not parts["p"]:
            continue
        found[constraints] = {
            "p": parts["p"],
            "scores": {k: pool_scores(v) for k, v in parts["scores"].items()},
            "spectra": {k: pool_spectra(v) for k, v in parts["spectra"].items()},
            "support": parts["support"],
        }
    return {"d": d, "by_constraints": found}


def _jsonable_mechanism(mechanism):
    out = {"d": mechanism["d"]}
    for c, m in mechanism["by_constraints"].items():
        out[c] = {
            "p": m["p"],
            "scores": {k: _score_summary(a) for k, a in m["scores"].items()},
            "support": [
                {
                    "n_support": s.n_support,
                    "n_weights": s.n_weights,
                    "fraction_inputs": s.fraction_inputs,
                }
                for s in m["support"]
            ],
            "spectra_ks": {k: s.ks_distance for k, s in m["spectra"].items()},
        }
    return out


def _score_summary(a):
    return {
        "recall": a.recall,
        "correct_median": float(np.median(a.correct)),
        "correct_iqr": float(np.subtract(*np.percentile(a.correct, [75, 25]))),
        "gap_median": float(np.median(a.gap)),
        "gap_iqr": float(np.subtract(*np.percentile(a.gap, [75, 25]))),
        "gumbel_loc": a.gumbel_loc,
        "gumbel_scale": a.gumbel_scale,
        "extreme_value_level": a.extreme_value_level,
        "competitor_std": a.competitor_std,
    }


def _figures(out, rows, results, mechanism, dims, constraint_sets, rules):
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    paths = {}

    def save(fig, name):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        paths[name] = path

    colours = {d: f"C{i % 10}" for i, d in enumerate(dims)}
    # fraction storable against alpha
    fig = Figure(figsize=(5 * len(constraint_sets), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(constraint_sets), sharey=True))
    for ax, constraints in zip(axes, constraint_sets, strict=True):
        for d in dims:
            for rule, style in (("max_margin", "-"), ("gradient", "--")):
                res = results.get((d, constraints, rule, 1.0))
                if res is None:
                    continue
                p, frac = res.curve
                if p.size == 0:
                    continue
                ax.step(
                    capacity_alpha(p, d),
                    frac,
                    style,
                    where="post",
                    color=colours[d],
                    label=f"d={d}" if rule == "max_margin" else None,
                )
        ax.axvline(0.5, color="k", lw=0.8, ls=":")
        ax.set_title(f"{constraints} (solid exact, dashed gradient)")
        ax.set_xlabel("alpha = p ln p / d^2")
    axes[0].set_ylabel("fraction of instances storable")
    axes[0].legend(fontsize="small")
    save(fig, "fraction_storable")

    # finite-size drift of alpha_c
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    grid = np.arange(min(dims), max(dims) + 1)
    wide = np.unique(np.geomspace(min(dims), 4 * max(dims), 30).round().astype(int))
    ax.plot(
        wide,
        [capacity_alpha(rs_capacity(int(d)), int(d)) for d in wide],
        "k-",
        lw=1,
        label="RS prediction",
    )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.axhline(0.5, color="k", ls=":", lw=1, label="asymptote 1/2")
    for j, constraints in enumerate(constraint_sets):
        sel = [
            r
            for r in rows
            if r["constraints"] == constraints
            and r["rule"] == "max_margin"
            and r["capacity"] is not None
        ]
        x = np.array([r["d"] for r in sel]) + 0.15 * (j - 0.5)
        y = np.array([r["alpha"] for r in sel])
        lo = [capacity_alpha(r["interval"][0] or r["capacity"], r["d"]) for r in sel]
        hi = [capacity_alpha(r["interval"][1] or r["capacity"], r["d"]) for r in sel]
        ax.errorbar(
            x,
            y,
            yerr=[y - np.array(lo), np.array(hi) - y],
            fmt="o",
            capsize=3,
            label=f"measured, {constraints}",
        )
    ax.set_xlabel("d")
    ax.set_ylabel("alpha_c = p_c ln p_c / d^2")
    ax.legend(fontsize="small")
    save(fig, "alpha_drift")

    # capacity of every rule against d
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(grid, [rs_capacity(int(d)) for d in grid], "k-", lw=1, label="RS")
    ax.plot(
        grid, [asymptotic_capacity(int(d)) for d in grid], "k:", lw=1, label="1/2 law"
    )
    for rule in rules:
        for recall in GRADIENT_RECALLS if rule == "gradient" else (1.0,):
            sel = [
                r
                for r in rows
                if r["rule"] == rule
                and r["recall"] == recall
                and r["constraints"] == constraint_sets[0]
                and r["capacity"] is not None
            ]
            label = rule if recall == 1.0 else f"{rule} {recall:.0%}"
            ax.plot(
                [r["d"] for r in sel], [r["capacity"] for r in sel], "o-", label=label
            )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("d")
    ax.set_ylabel(f"p_c ({constraint_sets[0]})")
    ax.legend(fontsize="small")
    save(fig, "capacity_by_rule")

    by_c = mechanism["by_constraints"]
    if by_c:
        first = next(iter(by_c.values()))
        save(plot_scores(first["scores"]), "scores")
        spectra = {f"optimal, {c}": m["spectra"]["optimal"] for c, m in by_c.items()}
        spectra["Hebbian, " + next(iter(by_c))] = first["spectra"]["Hebbian"]
        save(plot_spectrum(spectra), "spectra")
    return paths


def _fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _interval(row):
    lo, hi = row["interval"]
    if lo is None or hi is None:
        return "n/a"
    return f"[{lo:g}, {hi:g}]"


def _find(rows, d, constraints, rule, recall=1.0):
    for r in rows:
        if (r["d"], r["constraints"], r["rule"], r["recall"]) == (
            d,
            constraints,
            rule,
            recall,
        ):
            return r
    return None


def _rel(a, b):
    if a is None or b is None or b == 0:
        return None
    return 100.0 * (a - b) / b


def _pct(x):
    return "n/a" if x is None else f"{x:+.1f} %"


def _report(rows, mechanism, figures, **info):
    dims = info["dims"]
    constraint_sets = info["constraint_sets"]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# Capacity of linear associative memories: reproduction report",
        "",
        f"Generated by `assoc-cvx reproduce` on {stamp} "
        f"({platform.node()}, Python {platform.python_version()}), "
        f"{info['elapsed']:.0f} s in all (resumed cells count only their new work).",
        f"Dimensions {', '.join(map(str, dims))}; {info['n_instances']} nested "
        f"instances per cell; root seed {info['random_state']}; every rule sees "
        "the same instances.",
        "",
        "A d x d matrix W stores p random associations x -> y when every input "
        "scores its own target above every competitor, y_mu^T W x_mu > "
        "y_nu^T W x_mu. Competitors are the other targets (coupled) or p - 1 "
        "private random vectors per input (decoupled). The capacity p_c is the "
        "largest p that can be stored, decided exactly by convex programming "
        "for each instance (the max-margin W); theory predicts "
        "p_c ln p_c / d^2 -> 1/2 for both sets, approached slowly. Learning "
        "rules (Hebbian, pseudo-inverse, gradient descent on softmax "
        "cross-entropy) store fewer; the last section shows why.",
        "",
        "## Exact capacity against theory",
        "",
        "Median critical p over instances (exact verdicts), its 95 % "
        "order-statistic interval, alpha = p_c ln p_c / d^2, the finite-size "
        "replica-symmetric (RS) prediction of design notes §6 and the "
        "asymptote p ln p / d^2 = 1/2.",
        "",
        "| d | constraints | p_c | 95 % interval | alpha | RS p_c | p_c vs RS | "
        "asymptote |",
        "|---|---|---|---|---|---|---|---|",
    ]
    checks = []
    for d in dims:
        for c in constraint_sets:
            r = _find(rows, d, c, "max_margin")
            dev = _rel(r["capacity"], r["rs"])
            checks.append(("RS", d, c, dev))
            lines.append(
                f"| {d} | {c} | {_fmt(r['capacity'])} | {_interval(r)} | "
                f"{_fmt(r['alpha'], 3)} | {r['rs']:.1f} | {_pct(dev)} | "
                f"{r['asymptote']:.1f} |"
            )
    lines += ["", "Coupled against decoupled:", ""]
    if len(constraint_sets) == 2:
        lines += [
            "| d | coupled p_c | decoupled p_c | difference |",
            "|---|---|---|---|",
        ]
        for d in dims:
            a = _find(rows, d, "coupled", "max_margin")["capacity"]
            b = _find(rows, d, "decoupled", "max_margin")["capacity"]
            dev = _rel(a, b)
            checks.append(("coupled-decoupled", d, "", dev))
            lines.append(f"| {d} | {_fmt(a)} | {_fmt(b)} | {_pct(dev)} |")
    rs_ok = [abs(x[3]) <= 100 * AGREEMENT for x in checks if x[3] is not None]
    lines += [
        "",
        f"**Agreement within {AGREEMENT:.0%}:** {sum(rs_ok)} of {len(rs_ok)} "
        "comparisons above (RS at every d and constraint set, then coupled "
        "against decoupled)"
        + (
            "."
            if all(rs_ok)
            else "; the others are listed with their deviation. With few "
            "instances the median moves by several percent from run to run."
        ),
        "",
        "![fraction storable](fraction_storable.png)",
        "",
        "The fraction of instances storable falls from 1 to 0 over a narrow "
        "range of alpha, and the range moves towards 1/2 as d grows, "
        "logarithmically slowly:",
        "",
        "![finite-size drift of alpha_c](alpha_drift.png)",
        "",
        "## Learning rules against the exact capacity",
        "",
        "Learning rules are run on the same instances; an instance counts as "
        "stored when the rule's W, checked in numpy, recalls every association "
        "(or 99 %). These capacities are lower bounds, found by bisection that "
        "assumes success is monotone in p. Below p = 100 the 99 % criterion is "
        "the same as 100 % (99 % of fewer than 100 associations is all of them)"
        + (
            ", which is the case at every d here."
            if all((r["capacity"] or 0) < 99 for r in rows if r["rule"] == "max_margin")
            else "."
        ),
        "",
    ]
    header = ["d", "constraints", "exact"]
    rule_cols = []
    for rule in info["rules"]:
        if rule == "max_margin":
            continue
        for recall in GRADIENT_RECALLS if rule == "gradient" else (1.0,):
            rule_cols.append((rule, recall))
            header.append(rule if recall == 1.0 else f"{rule} {recall:.0%}")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    below = []
    for d in dims:
        for c in constraint_sets:
            exact = _find(rows, d, c, "max_margin")
            cells = [str(d), c, _fmt(exact["capacity"])]
            for rule, recall in rule_cols:
                r = _find(rows, d, c, rule, recall)
                dev = _rel(r["capacity"], exact["capacity"])
                cells.append(f"{_fmt(r['capacity'])} ({_pct(dev)})")
                per = [
                    a <= b
                    for a, b in zip(r["critical_p"], exact["critical_p"], strict=True)
                    if a is not None and b is not None
                ]
                below.append((d, c, rule, recall, sum(per), len(per), dev))
            lines.append("| " + " | ".join(cells) + " |")
    n_below = sum(b[4] for b in below)
    n_pairs = sum(b[5] for b in below)
    strictly = [b for b in below if b[6] is not None and b[6] < 0]
    lines += [
        "",
        f"Per instance, a rule's critical p is at most the exact one in {n_below} "
        f"of {n_pairs} comparisons (it must be, on the same instances); the "
        f"median of a rule is strictly below the exact median in {len(strictly)} "
        f"of {len(below)} cells.",
        "",
        "![capacity by rule](capacity_by_rule.png)",
        "",
    ]
    lines += _mechanism_section(mechanism, figures)
    lines += _extension_sections(info["extensions"])
    lines += [
        "## Settings",
        "",
        f"Gradient rule: {json.dumps(info['gradient_params'])}.",
        "Raw numbers: `results.json`; per-instance verdicts: `checkpoints/`.",
        "",
    ]
    return "\n".join(lines)


def _mechanism_section(mechanism, figures):
    d = mechanism["d"]
    lines = [f"## Mechanism at d = {d}", ""]
    if not mechanism["by_constraints"]:
        return [*lines, "No instance had an exact critical p; nothing analysed.", ""]
    lines += [
        f"The first {MECHANISM_INSTANCES} instances of each exact run, each at "
        "its own critical p, pooled. Scores are in units where "
        "||W||_F = d, so a competitor score of random patterns has variance "
        "about one; gap = correct score minus the largest competitor score.",
        "",
        "| constraints | p | memory | recall | correct median (IQR) | "
        "gap median (IQR) | Gumbel loc of competitor max | competitor std | "
        "EV level of K normals of that std |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c, m in mechanism["by_constraints"].items():
        for name, a in m["scores"].items():
            s = _score_summary(a)
            lines.append(
                f"| {c} | {', '.join(map(str, m['p']))} | {name} | "
                f"{s['recall']:.0%} | "
                f"{s['correct_median']:.2f} ({s['correct_iqr']:.2f}) | "
                f"{s['gap_median']:.3f} ({s['gap_iqr']:.3f}) | "
                f"{s['gumbel_loc']:.2f} | {s['competitor_std']:.2f} | "
                f"{s['competitor_std'] * s['extreme_value_level']:.2f} |"
            )
    lines.append("")
    for c, m in mechanism["by_constraints"].items():
        opt = _score_summary(m["scores"]["optimal"])
        heb = _score_summary(m["scores"]["Hebbian"])
        lines.append(
            f"- {c}: the optimal correct scores sit a median {opt['gap_median']:.3f} "
            f"above their largest competitor (interquartile range "
            f"{opt['gap_iqr']:.3f}); the Hebbian gaps have median "
            f"{heb['gap_median']:.3f} and interquartile range {heb['gap_iqr']:.3f}, "
            f"recalling {heb['recall']:.0%}. The optimal competitor maxima "
            f"(Gumbel location {opt['gumbel_loc']:.2f}) lie "
            + (
                "below"
                if opt["gumbel_loc"]
                < opt["competitor_std"] * opt["extreme_value_level"]
                else "above"
            )
            + " the extreme-value level of independent scores of the same "
            f"spread ({opt['competitor_std'] * opt['extreme_value_level']:.2f})."
        )
    lines.append("")
    if "scores" in figures:
        lines += ["![scores](scores.png)", ""]
    for c, m in mechanism["by_constraints"].items():
        if not m["support"]:
            lines.append(f"- {c}: no max-margin W; support not computed.")
            continue
        counts = ", ".join(str(s.n_support) for s in m["support"])
        frac = np.mean([s.fraction_inputs for s in m["support"]])
        lines.append(
            f"- {c}: support constraints per instance {counts}, for "
            f"d^2 = {m['support'][0].n_weights} weights; on average {frac:.0%} "
            "of inputs have at least one ("
            f"{len(m['support'])} of {len(m['p'])} instances; the others' W came "
            "from a route that does not give the max-margin matrix)."
        )
    lines += [
        "",
        "Singular values (scaled to unit mean square) against the "
        "quarter-circle law of a random matrix (Kolmogorov-Smirnov "
        "distance):",
        "",
    ]
    for c, m in mechanism["by_constraints"].items():
        ks = ", ".join(f"{k} {s.ks_distance:.2f}" for k, s in m["spectra"].items())
        lines.append(f"- {c}: {ks}")
    lines.append("")
    if "spectra" in figures:
        lines += ["![spectra](spectra.png)", ""]
    return lines


def _extension_sections(extensions):
    """Report sections of the extensions that were run, in EXTENSIONS order."""
    writers = {
        "kappa": _kappa_section,
        "listwise": _listwise_section,
        "two_layer": _two_layer_section,
    }
    lines = []
    for section in EXTENSIONS:
        if extensions.get(section):
            lines += writers[section](extensions[section])
    return lines


def _agreement_line(ratios, what):
    ratios = [x for x in ratios if x is not None]
    close = sum(abs(x - 1) <= AGREEMENT for x in ratios)
    return (
        f"Measured within {AGREEMENT:.0%} of {what} in {close} of {len(ratios)} cells."
    )


def _kappa_section(rows):
    lines = [
        "## Capacity with a margin kappa",
        "",
        "Median critical p (exact verdicts of the max-margin rule, on the same "
        "instances as above) when every margin (y_mu - y_nu)^T W x_mu must be at "
        "least kappa with ||W||_F = d, that is kappa standard deviations of a "
        "random competitor's score. It is compared with the finite-size "
        "replica-symmetric prediction p_c(d, kappa) of design notes §6 "
        "(`assoc_cvx.theory.rs_capacity(d, kappa)`); the last column is the "
        "top-1 capacity at kappa = 0 from the first table.",
        "",
        "| d | constraints | kappa | p_c | 95 % interval | RS p_c(d, kappa) | "
        "measured / RS | p_c at kappa = 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['constraints']} | {r['kappa']:g} | "
            f"{_fmt(r['capacity'])} | {_interval(r)} | {r['rs']:.1f} | "
            f"{_fmt(r['ratio'], 2)} | {_fmt(r['capacity_kappa0'])} |"
        )
    bracketed = [
        r["interval"][0] <= r["rs"] <= r["interval"][1]
        for r in rows
        if None not in r["interval"]
    ]
    return [
        *lines,
        "",
        _agreement_line([r["ratio"] for r in rows], "the RS prediction")
        + f" The RS prediction lies inside the 95 % interval in {sum(bracketed)} "
        f"of {len(bracketed)} cells with an interval.",
        "",
    ]


def _listwise_section(rows):
    lines = [
        "## Listwise retrieval",
        "",
        "Median critical p (exact verdicts of the tail-average program) when the "
        "correct score must beat the mean of the top r-fraction of the K = p - 1 "
        "competitor scores instead of every competitor (rK <= 1 is top-1 "
        "retrieval). The load p_c / d^2 is compared with alpha_c(r) of "
        "arXiv 2605.05189 (`assoc_cvx.theory.listwise_alpha(r)`), a d -> inf "
        "prediction: the capacity grows like d^2, not d^2 / ln d, and at small d "
        "the ratio need not be near one. Recall is that of the max-margin "
        "listwise W of each instance at its own critical p, averaged over "
        "instances: top-1 (its target scores highest) and top-ceil(rK) (its "
        "target is among the ceil(rK) highest).",
        "",
        "| d | constraints | r | p_c | 95 % interval | p_c / d^2 | alpha_c(r) | "
        "alpha_c(r) d^2 | measured / predicted | top-1 p_c | top-1 recall | "
        "top-ceil(rK) recall |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['constraints']} | {r['r']:g} | "
            f"{_fmt(r['capacity'])} | {_interval(r)} | {_fmt(r['load'], 3)} | "
            f"{r['alpha_c']:.3f} | {r['prediction']:.1f} | {_fmt(r['ratio'], 2)} | "
            f"{_fmt(r['capacity_top1'])} | {_fmt(r['top1_recall'], 3)} | "
            f"{_fmt(r['topq_recall'], 3)} |"
        )
    return [*lines, ""]


def _two_layer_section(rows):
    lines = [
        "## Two-layer memories",
        "",
        "Memories W = W2 W1 with hidden width k = round(beta d), on the same "
        "instances as above. **Frozen**: a random first layer, only W2 learned; "
        "its critical p is exact (the margins are linear in W2), compared with "
        "the beta/2 law p ln p / d^2 = beta / 2 (d -> inf) and with the RS "
        "prediction for N = d k weights (`rs_capacity(d, n_hidden=k)`). "
        "**Trained**: both layers trained by alternating convex sub-problems "
        "and by Adam, from several starts; a pair counts only when its margins, "
        "checked in float64, are positive. The trained capacity is a **lower "
        "bound**, not a certified limit: the largest p at which the search found "
        "a storing pair, and failing to find one proves nothing. **One layer**: "
        "the exact capacity of the same instances. Per instance frozen <= "
        "trained <= one layer must hold (the search starts from the frozen "
        "layer, and a rank-k product is a one-layer memory); the column counts "
        "the instances where it did.",
        "",
        "| d | constraints | beta (k) | frozen p_c (exact) | RS, N = d k | "
        "frozen / RS | beta/2 law | trained p (lower bound) | one layer p_c | "
        "RS one layer | frozen <= trained <= one layer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['constraints']} | {r['beta']:g} ({r['k']}) | "
            f"{_fmt(r['frozen'])} | {r['rs_frozen']:.1f} | "
            f"{_fmt(r['frozen_ratio'], 2)} | {_fmt(r['beta_law'])} | "
            f"{_fmt(r['trained'])} | {_fmt(r['one_layer'])} | "
            f"{r['rs_one_layer']:.1f} | {r['n_ordered']} of {r['n_instances']} |"
        )
    n_ordered = sum(r["n_ordered"] for r in rows)
    n_all = sum(r["n_instances"] for r in rows)
    n_undecided = sum(r["n_undecided"] for r in rows)
    held = (
        "held on every instance"
        if n_ordered == n_all
        else f"held on {n_ordered} of {n_all} instances"
        + (f" ({n_undecided} with an undecided capacity)" if n_undecided else "")
    )
    return [
        *lines,
        "",
        f"frozen <= trained <= one layer {held}.",
        _agreement_line([r["frozen_ratio"] for r in rows], "the RS prediction"),
        "",
    ]
