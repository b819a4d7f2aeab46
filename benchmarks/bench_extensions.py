"""Capacity with a margin, under listwise retrieval, and of two-layer memories.

Measures, against the predictions of the design notes (§6):

- ``kappa``: capacity vs the normalised margin kappa (Gaussian and unit-sphere
  patterns) against the finite-size replica-symmetric prediction p_c(d, kappa);
- ``listwise``: capacity vs the tail fraction r against alpha_c(r) d^2, with
  the top-1 and top-ceil(rK) recall of the max-margin listwise W at the
  critical p of each instance;
- ``two_layer``: frozen-layer (exact) and trained (lower bound) capacity vs
  beta = k / d, with the one-layer capacity of the same instances, the
  asymptotic beta/2 law and the finite-size RS prediction with N = d k.

Every finished configuration is appended to ``benchmarks/results/
extensions.jsonl`` (and every finished instance to a checkpoint under
``benchmarks/results/ckpt/``), so rerunning the same command resumes.

Usage::

    python benchmarks/bench_extensions.py kappa --dims 10 16 --instances 10
    python benchmarks/bench_extensions.py listwise --dims 10 12 --instances 10
    python benchmarks/bench_extensions.py two_layer --dims 16 --instances 6
    python benchmarks/bench_extensions.py report
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy.special import lambertw

from assoc_cvx import find_capacity
from assoc_cvx.margin import check_listwise, topk_recall
from assoc_cvx.theory import listwise_alpha, rs_capacity
from assoc_cvx.two_layer import find_two_layer_capacity

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "extensions.jsonl"
CKPT = RESULTS / "ckpt"


def _done():
    if not OUT.exists():
        return {}
    rows = {}
    for line in OUT.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["key"]] = row
    return rows


def _write(row):
    RESULTS.mkdir(exist_ok=True)
    with OUT.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "critical_p"}), flush=True)


def _capacity(d, n, seed, jobs, name, **kw):
    CKPT.mkdir(parents=True, exist_ok=True)
    return find_capacity(
        d,
        n_instances=n,
        random_state=seed,
        n_jobs=jobs,
        checkpoint=CKPT / f"{name}.jsonl",
        **kw,
    )


def run_kappa(args):
    done = _done()
    for d in args.dims:
        for dist in ("gaussian", "sphere"):
            for kappa in args.kappas:
                key = f"kappa/d={d}/{dist}/kappa={kappa}/n={args.instances}"
                if key in done:
                    continue
                t0 = time.perf_counter()
                res = _capacity(
                    d,
                    args.instances,
                    args.seed,
                    args.jobs,
                    key.replace("/", "_"),
                    kappa=kappa,
                    distribution=dist,
                )
                pred = rs_capacity(d, kappa)
                _write(
                    {
                        "key": key,
                        "section": "kappa",
                        "d": d,
                        "distribution": dist,
                        "kappa": kappa,
                        "capacity": res.capacity,
                        "interval": list(res.interval),
                        "critical_p": [_int(v) for v in res.critical_p],
                        "rs_prediction": pred,
                        "ratio": res.capacity / pred,
                        "elapsed": time.perf_counter() - t0,
                    }
                )


def _int(v):
    return None if np.isnan(v) else int(v)


def run_listwise(args):
    done = _done()
    for d in args.dims:
        for r in args.rs:
            key = f"listwise/d={d}/r={r}/n={args.instances}"
            if key in done:
                continue
            t0 = time.perf_counter()
            res = _capacity(
                d,
                args.instances,
                args.seed,
                args.jobs,
                key.replace("/", "_"),
                retrieval="listwise",
                r=r,
            )
            top1, topq = [], []
            for i, inst in enumerate(res.instances):
                if inst.critical_p is None:
                    continue
                p = inst.critical_p
                X, Y, _ = res.instance(i, p)
                W = check_listwise(X, Y, r=r).W
                q = max(1, math.ceil(r * (p - 1)))
                top1.append(topk_recall(W, X, Y, 1))
                topq.append(topk_recall(W, X, Y, q))
            alpha = listwise_alpha(r)
            _write(
                {
                    "key": key,
                    "section": "listwise",
                    "d": d,
                    "r": r,
                    "capacity": res.capacity,
                    "interval": list(res.interval),
                    "critical_p": [_int(v) for v in res.critical_p],
                    "load": res.capacity / d**2,
                    "alpha_c": alpha,
                    "ratio": res.capacity / (alpha * d * d),
                    "top1_recall": float(np.mean(top1)) if top1 else None,
                    "topq_recall": float(np.mean(topq)) if topq else None,
                    "elapsed": time.perf_counter() - t0,
                }
            )


def run_two_layer(args):
    done = _done()
    for d in args.dims:
        for beta in args.betas:
            key = f"two_layer/d={d}/beta={beta}/n={args.instances}"
            if key in done:
                continue
            res = find_two_layer_capacity(
                d,
                beta,
                mode="trained",
                n_instances=args.instances,
                random_state=args.seed,
                n_jobs=args.jobs,
                n_starts=args.starts,
            )
            inst = res.instances
            ordered = all(
                i.frozen is not None
                and i.one_layer is not None
                and i.frozen <= i.trained <= i.one_layer
                for i in inst
            )
            k = res.n_hidden
            _write(
                {
                    "key": key,
                    "section": "two_layer",
                    "d": d,
                    "beta": beta,
                    "k": k,
                    "frozen": res.frozen,
                    "trained": res.trained,
                    "one_layer": res.one_layer,
                    "per_instance": [
                        [i.frozen, i.trained, i.one_layer, i.trained_method]
                        for i in inst
                    ],
                    "ordered": ordered,
                    "beta_law": res.beta_law,
                    "frozen_alpha": res.frozen * math.log(res.frozen) / d**2,
                    "rs_frozen": rs_capacity(d, n_hidden=k),
                    "elapsed": res.elapsed,
                }
            )


def report(_args):
    """Markdown tables of everything measured, predictions recomputed."""
    rows = sorted(_done().values(), key=lambda r: r["key"])
    kappa = [r for r in rows if r["section"] == "kappa"]
    if kappa:
        print(
            "| d | kappa | p_c gaussian | p_c sphere | RS p_c(d, kappa) |"
            " ratio gaussian | ratio sphere |"
        )
        print("|---|---|---|---|---|---|---|")
        cells = {(r["d"], r["kappa"], r["distribution"]): r for r in kappa}
        for d, k in sorted({(r["d"], r["kappa"]) for r in kappa}):
            pred = rs_capacity(d, k)
            g, s = cells.get((d, k, "gaussian")), cells.get((d, k, "sphere"))
            print(
                f"| {d} | {k:g} | {_cap(g)} | {_cap(s)} | {pred:.1f} | "
                f"{_ratio(g, pred)} | {_ratio(s, pred)} |"
            )
        print()
    lw = [r for r in rows if r["section"] == "listwise"]
    if lw:
        print(
            "| d | r | p_c | p_c / d^2 | alpha_c(r) | ratio | top-1 recall |"
            " top-ceil(rK) recall |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in sorted(lw, key=lambda r: (r["d"], r["r"])):
            print(
                f"| {r['d']} | {r['r']:g} | {_cap(r)} | {r['load']:.3f} | "
                f"{r['alpha_c']:.3f} | {r['ratio']:.2f} | {r['top1_recall']:.3f} |"
                f" {r['topq_recall']:.3f} |"
            )
        print()
    tl = [r for r in rows if r["section"] == "two_layer"]
    if tl:
        print(
            "| d | beta (k) | frozen p_c | trained p (lower bound) | one layer p_c |"
            " frozen <= trained <= one | beta/2 law p | frozen alpha / (beta/2) |"
            " frozen / one layer | law(beta) / law(1) | RS, N = d k | found by |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(tl, key=lambda r: (r["d"], r["beta"])):
            methods = sorted({m for *_, m in r["per_instance"]})
            d, beta_k = r["d"], r["k"] / r["d"]
            print(
                f"| {d} | {r['beta']:g} ({r['k']}) | {r['frozen']:g} | "
                f"{r['trained']:g} | {r['one_layer']:g} | {r['ordered']} | "
                f"{r['beta_law']:.1f} | {r['frozen_alpha'] / (beta_k / 2):.2f} | "
                f"{r['frozen'] / r['one_layer']:.2f} | "
                f"{r['beta_law'] / _law(d, 1.0):.2f} | {r['rs_frozen']:.1f} | "
                f"{', '.join(methods)} |"
            )


def _law(d, beta):
    """The p solving ``p log p / d^2 = beta / 2``."""
    c = beta * d * d / 2
    return float(c / lambertw(c).real)


def _cap(row):
    if row is None:
        return "-"
    lo, hi = row["interval"]
    return f"{row['capacity']:g} [{lo:g}, {hi:g}]"


def _ratio(row, pred):
    return "-" if row is None else f"{row['capacity'] / pred:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=("kappa", "listwise", "two_layer", "report"))
    parser.add_argument("--dims", type=int, nargs="+", default=[10])
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--kappas", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5, 0.75]
    )
    parser.add_argument(
        "--rs", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3, 0.5]
    )
    parser.add_argument(
        "--betas", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0]
    )
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    {
        "kappa": run_kappa,
        "listwise": run_listwise,
        "two_layer": run_two_layer,
        "report": report,
    }[args.section](args)


if __name__ == "__main__":
    main()
