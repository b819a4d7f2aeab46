"""A durable store of storage verdicts: one SQLite file, one row per solve."""

import json
import logging
import math
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from assoc_cvx.exceptions import AssocCvxError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "KEY_COLUMNS",
    "SCHEMA_VERSION",
    "VALUE_COLUMNS",
    "ResultStore",
    "StoreError",
]

logger = logging.getLogger(__name__)

#: Written into every store; a file without it is not a store.
_FORMAT = "assoc_cvx result store"
#: Version of the table layout below; a store of another version is refused.
SCHEMA_VERSION = 1

#: Columns that identify one solve, with their SQLite types. Together they
#: are the primary key: a solve is stored at most once.
KEY_COLUMNS = {
    "n_features": "INTEGER",
    "n_patterns": "INTEGER",
    "constraints": "TEXT",
    "distribution": "TEXT",
    "rule": "TEXT",
    "kappa": "REAL",
    "seed": "INTEGER",
    "instance": "INTEGER",
    "solver": "TEXT",
}

#: Columns recorded for each solve: verdict, evidence, timings, versions.
VALUE_COLUMNS = {
    "verdict": "TEXT",
    "margin": "REAL",
    "margin_lower": "REAL",
    "margin_upper": "REAL",
    "certificate": "REAL",
    "max_margin": "INTEGER",
    "decided_by": "TEXT",
    "solver_status": "TEXT",
    "attempts": "TEXT",
    "compile_time": "REAL",
    "solve_time": "REAL",
    "wall_time": "REAL",
    "package_version": "TEXT",
    "solver_version": "TEXT",
    "cvxpy_version": "TEXT",
    "numpy_version": "TEXT",
    "python_version": "TEXT",
    "host": "TEXT",
    "created_at": "TEXT",
}

VERDICTS = ("stored", "not_storable", "undecided")

_COLUMNS = {**KEY_COLUMNS, **VALUE_COLUMNS}
_TABLE = "solves"


class StoreError(AssocCvxError, ValueError):
    """A file is not a result store of this version, or cannot be written."""


def _create_sql():
    cols = ",\n  ".join(f"{name} {kind}" for name, kind in _COLUMNS.items())
    verdicts = ", ".join(f"'{v}'" for v in VERDICTS)
    return (
        f"CREATE TABLE {_TABLE} (\n  {cols},\n"
        f"  CHECK (verdict IN ({verdicts})),\n"
        f"  PRIMARY KEY ({', '.join(KEY_COLUMNS)})\n)"
    )


def _plain(value):
    """SQLite-ready value: NaN becomes NULL, numpy scalars Python ones."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return int(value)
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class ResultStore:
    """One SQLite file holding one row per storage solve.

    Rows are keyed by the parameters of the solve (:data:`KEY_COLUMNS`): the
    dimension d, the number of patterns p, the constraint set, the pattern
    distribution, the learning rule, the margin kappa, the root seed, the
    instance index and the solver order requested. Inserting a row whose key
    is present already does nothing, so a sweep that is rerun never
    duplicates a row.

    Parameters
    ----------
    path : str or os.PathLike
        The file. It is created (with its directory's permission) unless
        ``readonly`` is set.
    readonly : bool, default=False
        Open for reading only: the file must exist, nothing is written.
    timeout : float, default=30.0
        Seconds to wait for another process's write lock.

    Raises
    ------
    StoreError
        When the file exists but is not a store (another SQLite database, a
        file of another format, a store of another schema version, a damaged
        file), or does not exist and ``readonly`` is set.

    Notes
    -----
    The file is in write-ahead-log mode: readers (``assoc-cvx results``,
    another process) see every committed row while a sweep writes, and a
    writer killed at any point (even by SIGKILL) leaves every row it
    committed and none of the one it was writing. Each row is committed in
    its own transaction with ``synchronous=FULL``, so committed rows also
    survive a power cut. A full disk makes the insert raise (as
    :class:`StoreError`); rows committed before it stay. The ``-wal`` and
    ``-shm`` files next to the store belong to it (a reader may leave them
    behind): copy or move them with it.

    Examples
    --------
    >>> import tempfile, os
    >>> from assoc_cvx.store import ResultStore
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.sqlite")
    >>> with ResultStore(path) as store:
    ...     len(store)
    0
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        readonly: bool = False,
        timeout: float = 30.0,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                "path must be a file path (str or os.PathLike); got "
                f"{path!r} of type {type(path).__name__}."
            )
        self.path = Path(path)
        self.readonly = bool(readonly)
        if self.path.is_dir():
            raise StoreError(f"Result store {str(self.path)!r} is a directory.")
        if readonly and not self.path.exists():
            raise StoreError(f"Result store {str(self.path)!r} does not exist.")
        if not readonly and not self.path.parent.is_dir():
            raise StoreError(
                f"Result store {str(self.path)!r}: directory "
                f"{str(self.path.parent)!r} does not exist."
            )
        try:
            if readonly:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=timeout)
            else:
                self._conn = sqlite3.connect(self.path, timeout=timeout)
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open result store {str(self.path)!r}: {exc}."
            ) from None
        self._conn.isolation_level = None  # transactions are explicit
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    # -- opening -----------------------------------------------------------

    def _foreign(self, why):
        return StoreError(
            f"{str(self.path)!r} is not an assoc_cvx result store ({why}); "
            "pass the path of a store written by assoc-cvx sweep, or a new file."
        )

    def _prepare(self):
        conn = self._conn
        try:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
        except sqlite3.DatabaseError as exc:
            raise self._foreign(f"SQLite cannot read it: {exc}") from None
        if not tables:
            if self.readonly:
                raise self._foreign("it is empty")
            self._create()
        else:
            self._validate(tables)
        if not self.readonly:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise self._foreign(f"SQLite cannot read it: {exc}") from None
            if mode.lower() != "wal":
                logger.info("journal mode of %s is %s, not wal", self.path, mode)
            conn.execute("PRAGMA synchronous = FULL")

    def _create(self):
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Another process may have created it since the check above.
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'meta'"
            ).fetchone()
            if exists is None:
                conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("format", _FORMAT), ("schema_version", str(SCHEMA_VERSION))],
                )
                conn.execute(_create_sql())
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._foreign(f"SQLite cannot write it: {exc}") from None
        if exists is not None:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
            self._validate(tables)

    def _validate(self, tables):
        conn = self._conn
        if "meta" not in tables or _TABLE not in tables:
            raise self._foreign(
                f"it holds the tables {', '.join(sorted(tables))}, "
                f"not 'meta' and '{_TABLE}'"
            )
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({_TABLE})")]
        except sqlite3.DatabaseError as exc:
            raise self._foreign(f"SQLite cannot read it: {exc}") from None
        if meta.get("format") != _FORMAT:
            raise self._foreign(f"its format is {meta.get('format')!r}")
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StoreError(
                f"Result store {str(self.path)!r} has schema version "
                f"{meta.get('schema_version')!r}; this version of assoc_cvx reads "
                f"version {SCHEMA_VERSION} only."
            )
        if columns != list(_COLUMNS):
            missing = sorted(set(_COLUMNS) - set(columns))
            extra = sorted(set(columns) - set(_COLUMNS))
            raise self._foreign(
                f"table '{_TABLE}' has other columns (missing {missing}, "
                f"unexpected {extra})"
            )

    # -- context and closing -----------------------------------------------

    def close(self) -> None:
        """Close the connection (committed rows are on disk already)."""
        self._conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self._query("SELECT COUNT(*) FROM solves")[0][0]

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    # -- writing -------------------------------------------------------------

    def insert(self, row: Mapping, *, replace_undecided: bool = False) -> bool:
        """Commit one solve, unless a row with its key is stored already.

        Parameters
        ----------
        row : mapping
            Every column of :data:`KEY_COLUMNS` and :data:`VALUE_COLUMNS`
            (``attempts`` may be a list; it is stored as JSON).
        replace_undecided : bool, default=False
            Replace a stored row with the same key if, and only if, its
            verdict is "undecided". A decided row is never replaced.

        Returns
        -------
        inserted : bool
            False when the key was present and its row kept.

        Raises
        ------
        ValueError
            When a column is missing or unknown, or the verdict is not one of
            "stored", "not_storable", "undecided".
        StoreError
            When the store is read-only or SQLite cannot write (full disk,
            lost file).
        """
        return self.insert_many([row], replace_undecided=replace_undecided) == 1

    def insert_many(
        self, rows: Iterable[Mapping], *, replace_undecided: bool = False
    ) -> int:
        """Commit several solves in one transaction; return how many were written.

        Rows whose key is stored already are skipped (see :meth:`insert`).
        """
        if self.readonly:
            raise StoreError(f"Result store {str(self.path)!r} is open read-only.")
        values = [self._values(row) for row in rows]
        names = ", ".join(_COLUMNS)
        marks = ", ".join("?" * len(_COLUMNS))
        if replace_undecided:
            updates = ", ".join(f"{c} = excluded.{c}" for c in VALUE_COLUMNS)
            sql = (
                f"INSERT INTO {_TABLE} ({names}) VALUES ({marks}) "
                f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {updates} "
                f"WHERE {_TABLE}.verdict = 'undecided'"
            )
        else:
            sql = f"INSERT OR IGNORE INTO {_TABLE} ({names}) VALUES ({marks})"
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            conn.executemany(sql, values)
            added = conn.total_changes - before
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(
                f"Cannot write to result store {str(self.path)!r}: {exc} "
                "(rows committed before are kept)."
            ) from None
        return added

    @staticmethod
    def _values(row):
        if not isinstance(row, Mapping):
            raise TypeError(f"A row must be a mapping; got {type(row).__name__}.")
        missing = [c for c in _COLUMNS if c not in row]
        unknown = [c for c in row if c not in _COLUMNS]
        if missing or unknown:
            raise ValueError(
                f"A row needs exactly the columns {', '.join(_COLUMNS)}; "
                f"missing {missing}, unknown {unknown}."
            )
        if row["verdict"] not in VERDICTS:
            raise ValueError(
                f"verdict must be one of {', '.join(map(repr, VERDICTS))}; "
                f"got {row['verdict']!r}."
            )
        out = []
        for name in _COLUMNS:
            value = row[name]
            if name == "attempts" and not isinstance(value, str | None):
                value = json.dumps(value)
            out.append(_plain(value))
        return out

    # -- reading -------------------------------------------------------------

    def _query(self, sql, params=()):
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot read result store {str(self.path)!r}: {exc}."
            ) from None

    def keys(self) -> set[tuple]:
        """Keys of every stored solve, as tuples in :data:`KEY_COLUMNS` order."""
        return set(
            map(tuple, self._query(f"SELECT {', '.join(KEY_COLUMNS)} FROM solves"))
        )

    def verdicts(self, **where) -> dict[tuple, str]:
        """Verdict of every stored solve (matching ``where``), by key tuple.

        Parameters
        ----------
        **where
            Equality filters on key columns, e.g. ``n_features=4``.
        """
        bad = [k for k in where if k not in KEY_COLUMNS]
        if bad:
            raise ValueError(
                f"Filters must be key columns ({', '.join(KEY_COLUMNS)}); got {bad}."
            )
        sql = f"SELECT {', '.join(KEY_COLUMNS)}, verdict FROM solves"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        rows = self._query(sql, tuple(where.values()))
        return {tuple(r[:-1]): r[-1] for r in rows}

    def rows(self) -> list[dict]:
        """Every stored row as a dict, sorted by key."""
        order = ", ".join(KEY_COLUMNS)
        result = self._query(
            f"SELECT {', '.join(_COLUMNS)} FROM solves ORDER BY {order}"
        )
        return [dict(zip(_COLUMNS, r, strict=True)) for r in result]

    def to_frame(self) -> "pd.DataFrame":
        """Every stored row as a :class:`pandas.DataFrame`, sorted by key.

        Missing values (no margin, no certificate) are NaN or None.
        """
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(_COLUMNS))
