"""Summaries, curves, exports and plots of the solves in a result store."""

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assoc_cvx.store import ResultStore
from assoc_cvx.sweep import MONOTONE_RULES
from assoc_cvx.theory import asymptotic_capacity, capacity_alpha

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GROUP_COLUMNS",
    "export_store",
    "instance_frame",
    "plot_curves",
    "storable_curves",
    "summarise_store",
]

logger = logging.getLogger(__name__)

#: Columns defining one curve; the instances of every seed are pooled.
GROUP_COLUMNS = ["n_features", "constraints", "distribution", "rule", "kappa", "solver"]
_INSTANCE = ["seed", "instance"]


def _frame(store):
    """The rows of a store (or of a frame it gave) as a DataFrame."""
    import pandas as pd

    if isinstance(store, pd.DataFrame):
        return store
    if isinstance(store, ResultStore):
        return store.to_frame()
    with ResultStore(store, readonly=True) as s:
        return s.to_frame()


def _bracket(verdicts):
    """Largest p proved storable (at least 1) and smallest p proved not."""
    lo = max([1] + [p for p, v in verdicts.items() if v == "stored"])
    no = [p for p, v in verdicts.items() if v == "not_storable"]
    return lo, (min(no) if no else None)


def instance_frame(
    store: "ResultStore | str | os.PathLike | pd.DataFrame",
) -> "pd.DataFrame":
    """One row per instance: its solves, bounds and exact critical p.

    Parameters
    ----------
    store : ResultStore, str, os.PathLike or pandas.DataFrame
        The store (a path is opened read-only), or the frame of its rows
        (:meth:`ResultStore.to_frame`).

    Returns
    -------
    frame : pandas.DataFrame
        Columns :data:`GROUP_COLUMNS`, seed, instance, n_solves, n_undecided,
        lower, upper and critical_p. For a rule of
        :data:`~assoc_cvx.sweep.MONOTONE_RULES`, lower is the largest p
        proved storable (1 if none) and upper the smallest p proved not
        storable; critical_p is lower when upper is lower + 1, else missing.
        For other rules the three are missing.
    """
    import pandas as pd

    df = _frame(store)
    records = []
    for key, rows in df.groupby(GROUP_COLUMNS + _INSTANCE, sort=True):
        verdicts = dict(zip(rows["n_patterns"], rows["verdict"], strict=True))
        record = dict(zip(GROUP_COLUMNS + _INSTANCE, key, strict=True))
        record["n_solves"] = len(rows)
        record["n_undecided"] = int((rows["verdict"] == "undecided").sum())
        lo = hi = critical = None
        if record["rule"] in MONOTONE_RULES:
            lo, hi = _bracket(verdicts)
            if hi is not None and hi <= lo:
                logger.warning(
                    "instance %s is stored at p=%d but not at p=%d; nested "
                    "instances cannot be, so its critical p is left missing",
                    key,
                    lo,
                    hi,
                )
            elif hi == lo + 1:
                critical = lo
        record.update(lower=lo, upper=hi, critical_p=critical)
        records.append(record)
    columns = [
        *GROUP_COLUMNS,
        *_INSTANCE,
        "n_solves",
        "n_undecided",
        "lower",
        "upper",
        "critical_p",
    ]
    out = pd.DataFrame(records, columns=columns)
    for name in ("lower", "upper", "critical_p"):
        out[name] = out[name].astype("Int64")
    return out


def summarise_store(
    store: "ResultStore | str | os.PathLike | pd.DataFrame",
) -> "pd.DataFrame":
    r"""One row per curve: counts of verdicts and the median critical p.

    Parameters
    ----------
    store : ResultStore, str, os.PathLike or pandas.DataFrame
        The store (a path is opened read-only), or the frame of its rows
        (:meth:`ResultStore.to_frame`).

    Returns
    -------
    frame : pandas.DataFrame
        Columns :data:`GROUP_COLUMNS`, instances, solves, stored,
        not_storable, undecided, exact (instances with an exact critical p),
        p_c (median critical p over them), alpha
        (:math:`p_c \ln p_c / d^2`) and asymptote (large-d prediction of
        p_c).
    """
    import pandas as pd

    df = _frame(store)
    inst = instance_frame(df)
    records = []
    for key, rows in df.groupby(GROUP_COLUMNS, sort=True):
        record = dict(zip(GROUP_COLUMNS, key, strict=True))
        mask = np.ones(len(inst), dtype=bool)
        for col, value in record.items():
            mask &= (inst[col] == value).to_numpy()
        these = inst[mask]
        exact = these["critical_p"].dropna().to_numpy(dtype=float)
        counts = rows["verdict"].value_counts()
        p_c = float(np.median(exact)) if exact.size else np.nan
        record.update(
            instances=len(these),
            solves=len(rows),
            stored=int(counts.get("stored", 0)),
            not_storable=int(counts.get("not_storable", 0)),
            undecided=int(counts.get("undecided", 0)),
            exact=int(exact.size),
            p_c=p_c,
            alpha=float(capacity_alpha(p_c, record["n_features"]))
            if p_c > 1
            else np.nan,
            asymptote=asymptotic_capacity(int(record["n_features"])),
        )
        records.append(record)
    columns = [
        *GROUP_COLUMNS,
        "instances",
        "solves",
        "stored",
        "not_storable",
        "undecided",
        "exact",
        "p_c",
        "alpha",
        "asymptote",
    ]
    return pd.DataFrame(records, columns=columns)


def storable_curves(
    store: "ResultStore | str | os.PathLike | pd.DataFrame",
) -> "pd.DataFrame":
    r"""Fraction of instances storable at each p, per curve.

    For a rule of :data:`~assoc_cvx.sweep.MONOTONE_RULES` an instance counts
    as storable at every p up to its largest stored p and as not storable
    from its smallest unstorable p on (nested instances), else only where it
    was solved; undecided solves count nowhere.

    Parameters
    ----------
    store : ResultStore, str, os.PathLike or pandas.DataFrame
        The store (a path is opened read-only), or the frame of its rows
        (:meth:`ResultStore.to_frame`).

    Returns
    -------
    frame : pandas.DataFrame
        Columns :data:`GROUP_COLUMNS`, p, alpha (:math:`p \ln p / d^2`),
        n_decided (instances decided at p) and fraction (storable among
        them).
    """
    import pandas as pd

    df = _frame(store)
    records = []
    for key, rows in df.groupby(GROUP_COLUMNS, sort=True):
        group = dict(zip(GROUP_COLUMNS, key, strict=True))
        d = int(group["n_features"])
        monotone = group["rule"] in MONOTONE_RULES
        instances = [
            dict(zip(r["n_patterns"], r["verdict"], strict=True))
            for _, r in rows.groupby(_INSTANCE)
        ]
        ps = sorted(set(rows["n_patterns"]))
        if monotone:
            ps = list(range(min(ps), max(ps) + 1))
        for p in ps:
            stored = decided = 0
            for verdicts in instances:
                v = verdicts.get(p)
                if monotone:
                    lo, hi = _bracket(verdicts)
                    if p <= lo:
                        v = "stored"
                    elif hi is not None and p >= hi:
                        v = "not_storable"
                if v in ("stored", "not_storable"):
                    decided += 1
                    stored += v == "stored"
            if decided:
                records.append(
                    {
                        **group,
                        "p": p,
                        "alpha": float(capacity_alpha(p, d)),
                        "n_decided": decided,
                        "fraction": stored / decided,
                    }
                )
    columns = [*GROUP_COLUMNS, "p", "alpha", "n_decided", "fraction"]
    return pd.DataFrame(records, columns=columns)


def export_store(
    store: "ResultStore | str | os.PathLike | pd.DataFrame",
    path: str | os.PathLike,
    *,
    format: str | None = None,
) -> Path:
    """Write every row of a store to a CSV or Parquet file.

    Parameters
    ----------
    store : ResultStore, str, os.PathLike or pandas.DataFrame
        The store (a path is opened read-only), or the frame of its rows
        (:meth:`ResultStore.to_frame`).
    path : str or os.PathLike
        Output file.
    format : {"csv", "parquet"}, default=None
        None: from the suffix of ``path`` (``.parquet`` or ``.pq`` is Parquet,
        anything else CSV).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ImportError
        For Parquet without pyarrow installed (the message says how to get it).
    """
    path = Path(path)
    if format is None:
        format = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    if format not in ("csv", "parquet"):
        raise ValueError(f"format must be one of 'csv', 'parquet'; got {format!r}.")
    df = _frame(store)
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(
                "Parquet export needs pyarrow: pip install pyarrow "
                "(or export CSV instead)."
            ) from None
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def plot_curves(
    store: "ResultStore | str | os.PathLike | pd.DataFrame",
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> Path:
    r"""Draw the fraction of storable instances against the load alpha.

    One line per curve of :func:`storable_curves`, with the large-d
    capacity :math:`\alpha = p \ln p / d^2 = 1/2` as a dashed line.

    Parameters
    ----------
    store : ResultStore, str, os.PathLike or pandas.DataFrame
        The store (a path is opened read-only), or the frame of its rows
        (:meth:`ResultStore.to_frame`).
    path : str or os.PathLike
        Image file; its suffix sets the format (``.png``, ``.pdf``, ``.svg``).
    title : str, default=None
        Figure title.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ValueError
        When the store has no decided solve to draw.
    ImportError
        Without matplotlib (the message says how to get it).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plotting needs matplotlib: pip install matplotlib") from None
    curves = storable_curves(store)
    if curves.empty:
        raise ValueError("The store has no decided solve to plot.")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for key, rows in curves.groupby(GROUP_COLUMNS, sort=True):
            g = dict(zip(GROUP_COLUMNS, key, strict=True))
            label = f"d={g['n_features']} {g['constraints']} {g['rule']}"
            if g["distribution"] != "gaussian":
                label += f" {g['distribution']}"
            if g["kappa"]:
                label += f" κ={g['kappa']:g}"
            n = int(rows["n_decided"].max())
            ax.plot(
                rows["alpha"],
                rows["fraction"],
                marker="o",
                markersize=3,
                label=f"{label} ({n} inst.)",
            )
        ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
        ax.text(0.5, 0.02, " α = 1/2 (d → ∞)", color="grey", fontsize=8)
        ax.set_xlabel(r"load $\alpha = p \ln p / d^2$")
        ax.set_ylabel("fraction of instances storable")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
