"""The SQLite result store: keys, idempotence, schema checks, faults."""

import sqlite3

import pytest

from assoc_cvx.store import KEY_COLUMNS, VALUE_COLUMNS, ResultStore, StoreError


def _row(**changes):
    row = {
        "n_features": 4,
        "n_patterns": 6,
        "constraints": "coupled",
        "distribution": "gaussian",
        "rule": "max_margin",
        "kappa": 0.0,
        "seed": 0,
        "instance": 0,
        "solver": "ECOS",
        "verdict": "stored",
        "margin": 0.1,
        "margin_lower": 0.1,
        "margin_upper": float("nan"),
        "certificate": float("nan"),
        "max_margin": True,
        "decided_by": "ECOS",
        "solver_status": "optimal",
        "attempts": [["ECOS", "plain", "optimal", "stored"]],
        "compile_time": 0.01,
        "solve_time": 0.02,
        "wall_time": 0.03,
        "package_version": "0.1.0",
        "solver_version": "2.0.14",
        "cvxpy_version": "1.7",
        "numpy_version": "2.0",
        "python_version": "3.11",
        "host": "here",
        "created_at": "2026-12-03T00:00:00+00:00",
    }
    assert set(row) == set(KEY_COLUMNS) | set(VALUE_COLUMNS)
    row.update(changes)
    return row


def test_insert_is_idempotent_and_keeps_the_first_row(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as store:
        assert store.insert(_row())
        assert not store.insert(_row(verdict="undecided"))
        assert store.insert(_row(instance=1))
        assert store.insert_many([_row(n_patterns=7), _row(n_patterns=7)]) == 1
        assert len(store) == 3
    with ResultStore(path, readonly=True) as store:
        rows = store.rows()
    assert [r["verdict"] for r in rows] == ["stored", "stored", "stored"]
    assert rows[0]["margin_upper"] is None  # NaN is stored as NULL
    assert rows[0]["attempts"] == '[["ECOS", "plain", "optimal", "stored"]]'


def test_every_key_column_separates_rows(tmp_path):
    changes = {
        "n_features": 5,
        "n_patterns": 9,
        "constraints": "decoupled",
        "distribution": "sphere",
        "rule": "hebbian",
        "kappa": 0.5,
        "seed": 2**63 - 1,
        "instance": 3,
        "solver": "IPM",
    }
    assert set(changes) == set(KEY_COLUMNS)
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.insert(_row())
        for name, value in changes.items():
            assert store.insert(_row(**{name: value})), name
        assert len(store) == 1 + len(KEY_COLUMNS)


def test_rows_are_readable_while_a_write_is_open(tmp_path):
    path = tmp_path / "s.sqlite"
    writer = ResultStore(path)
    writer.insert(_row())
    # Another connection holds the write lock in an open transaction.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("DELETE FROM solves")
    with ResultStore(path, readonly=True) as reader:
        assert len(reader) == 1  # the committed row, not the pending delete
    other.execute("ROLLBACK")
    other.close()
    writer.close()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"hello, not a database at all" * 100, "not an assoc_cvx result store"),
        (b"", None),  # an empty file becomes a new store
    ],
)
def test_files_that_are_not_sqlite(tmp_path, content, match):
    path = tmp_path / "s.sqlite"
    path.write_bytes(content)
    if match is None:
        with ResultStore(path) as store:
            assert len(store) == 0
        return
    with pytest.raises(StoreError, match=match):
        ResultStore(path)
    with pytest.raises(StoreError, match=match):
        ResultStore(path, readonly=True)


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (x INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"tables things, not 'meta' and 'solves'"):
        ResultStore(path)


def test_other_schema_version_and_columns_are_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    ResultStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    with pytest.raises(StoreError, match="schema version '99'"):
        ResultStore(path)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.execute("ALTER TABLE solves ADD COLUMN extra TEXT")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"unexpected \['extra'\]"):
        ResultStore(path)


def test_truncated_store_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as store:
        store.insert_many([_row(instance=i) for i in range(200)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="result store"):
        with ResultStore(path) as store:
            store.rows()


def test_full_disk_keeps_committed_rows(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    store.insert(_row())
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
    big = "x" * 100_000
    with pytest.raises(StoreError, match=r"full.*rows committed before are kept"):
        store.insert(_row(instance=1, host=big))
    store.close()
    with ResultStore(path, readonly=True) as reader:
        assert [r["instance"] for r in reader.rows()] == [0]


@pytest.mark.parametrize(
    ("row", "error", "match"),
    [
        (_row(verdict="maybe"), ValueError, "verdict must be one of"),
        ({"n_features": 4}, ValueError, "missing"),
        (_row(extra=1), ValueError, r"unknown \['extra'\]"),
        ([1, 2], TypeError, "mapping"),
    ],
)
def test_bad_rows_raise(tmp_path, row, error, match):
    with ResultStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(error, match=match):
            store.insert(row)
        assert len(store) == 0


def test_bad_paths_raise(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        ResultStore(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        ResultStore(tmp_path / "missing" / "s.sqlite")
    with pytest.raises(StoreError, match="does not exist"):
        ResultStore(tmp_path / "s.sqlite", readonly=True)
    with pytest.raises(TypeError, match="path must be a file path"):
        ResultStore(3)
    ResultStore(tmp_path / "s.sqlite").close()
    with ResultStore(tmp_path / "s.sqlite", readonly=True) as store:
        with pytest.raises(StoreError, match="read-only"):
            store.insert(_row())
        with pytest.raises(ValueError, match="Filters must be key columns"):
            store.verdicts(verdict="stored")
