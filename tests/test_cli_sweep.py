"""The sweep, results and plot commands, and their answers to bad input."""

import builtins
import sqlite3

import pandas as pd
import pytest

from assoc_cvx.cli import main
from assoc_cvx.store import ResultStore

GRID = [
    "--dims",
    "3",
    "--p",
    "3,6",
    "--instances",
    "3",
    "--rules",
    "max_margin,hebbian",
]


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "runs.sqlite"
    assert main(["sweep", str(path), *GRID]) == 0
    return path


def test_sweep_prints_a_summary_and_resumes(tmp_path, capsys):
    path = tmp_path / "runs.sqlite"
    assert main(["sweep", str(path), *GRID]) == 0
    out = capsys.readouterr().out
    assert "12 units (0 done before), 12 solves now, 12 rows" in out
    assert "undecided solves: 0" in out
    assert main(["sweep", str(path), *GRID]) == 0
    assert "12 units (12 done before), 0 solves now, 12 rows" in capsys.readouterr().out


def test_sweep_lists_undecided_solves(tmp_path, capsys, monkeypatch):
    import assoc_cvx.engine as engine

    def inaccurate(program, name, options):
        return engine.SolverRun("optimal_inaccurate", 0.0, 0.0)

    monkeypatch.setattr(engine, "solve_program", inaccurate)
    path = tmp_path / "runs.sqlite"
    args = ["--dims", "3", "--p", "3", "--instances", "2", "--solver", "ECOS"]
    assert main(["sweep", str(path), *args]) == 0
    out = capsys.readouterr().out
    if "undecided solves: 0" in out:  # a solver outside cvxpy decided them
        assert "ECOS" not in {r["decided_by"] for r in ResultStore(path).rows()}
    else:
        assert "undecided solves: 2" in out
        assert "d=3 p=3 coupled gaussian max_margin seed 0 instance 1" in out


def test_results_prints_and_exports(store, tmp_path, capsys):
    csv, parquet = tmp_path / "rows.csv", tmp_path / "rows.parquet"
    code = main(["results", str(store), "--csv", str(csv), "--parquet", str(parquet)])
    assert code == 0
    out = capsys.readouterr().out
    assert "max_margin" in out
    assert "hebbian" in out
    assert "12 rows written to" in out
    rows = pd.read_csv(csv)
    assert len(rows) == 12
    pytest.importorskip("pyarrow")
    assert pd.read_parquet(parquet).equals(ResultStore(store).to_frame())


def test_parquet_without_pyarrow_is_a_one_line_error(store, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow":
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(SystemExit) as exc:
        main(["results", str(store), "--parquet", str(tmp_path / "x.parquet")])
    assert exc.value.code == 2


def test_plot_writes_a_png(store, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    assert main(["plot", str(store), "-o", str(out), "--title", "d = 3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plot written to" in capsys.readouterr().out


def _foreign(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return str(path)


def _text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 200)
    return str(path)


def _empty_store(tmp_path):
    path = tmp_path / "empty.sqlite"
    ResultStore(path).close()
    return str(path)


#: Every bad input tried, with the one-line message expected.
BAD_INPUT = [
    (["sweep", "{tmp}/s.sqlite"], "the following arguments are required: --dims"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "0"], "expected values >= 1, got 0"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "four"], "expected int values"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3,,4"], "comma-separated list"),
    (["sweep", "{tmp}/s.sqlite", "--dims", ""], "comma-separated list"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--rules", "oja"], "invalid choice"),
    (
        ["sweep", "{tmp}/s.sqlite", "--dims", "3", "--rules", "hebbian"],
        "cannot be bisected on p",
    ),
    (
        ["sweep", "{tmp}/s.sqlite", "--dims", "3", "--constraints", "both"],
        "invalid choice 'both'",
    ),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--margins", "-0.1"], ">= 0"),
    (
        [
            "sweep",
            "{tmp}/s.sqlite",
            "--dims",
            "3",
            "--margins",
            "0.1",
            "--rules",
            "hebbian",
            "--p",
            "4",
        ],
        "max_margin' only",
    ),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--margins", "nan"], "finite"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--seeds", "-1"], ">= 0"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--seeds", "1e30"], "int values"),
    (
        ["sweep", "{tmp}/s.sqlite", "--dims", "3", "--seeds", str(2**63)],
        r"seeds must be integers in [0, 2**63)",
    ),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--p", "1"], ">= 2, got 1"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--alphas", "-1"], "alphas must be"),
    (
        ["sweep", "{tmp}/s.sqlite", "--dims", "3", "--p", "3", "--alphas", "1"],
        "not allowed with argument",
    ),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--jobs", "0"], "nonzero integer"),
    (
        ["sweep", "{tmp}/s.sqlite", "--dims", "3", "--jobs", "2", "--scheduler", "x"],
        "not allowed with argument",
    ),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--instances", "0"], ">= 1"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--solver", "cplex"], "invalid choice"),
    (["sweep", "{tmp}/s.sqlite", "--dims", "3", "--p-max", "1"], ">= 2"),
    (["sweep", "{tmp}", "--dims", "3"], "is a directory"),
    (["sweep", "{tmp}/missing/s.sqlite", "--dims", "3"], "does not exist"),
    (["sweep", "", "--dims", "3"], "needs a file name"),
    (["sweep", "{foreign}", "--dims", "3"], "not an assoc_cvx result store"),
    (["sweep", "{text}", "--dims", "3"], "not an assoc_cvx result store"),
    (["results", "{tmp}/missing.sqlite"], "does not exist"),
    (["results", "{foreign}"], "not an assoc_cvx result store"),
    (["results", "{text}"], "not an assoc_cvx result store"),
    (["results", "{empty}", "--csv", "{tmp}"], "is a directory"),
    (["plot", "{empty}", "-o", "{tmp}/p.png"], "no decided solve to plot"),
    (["plot", "{empty}"], "the following arguments are required: -o/--output"),
    (["plot", "{empty}", "-o", "{tmp}/nodir/p.png"], "does not exist"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    files = {
        "tmp": str(tmp_path),
        "foreign": _foreign(tmp_path),
        "text": _text_file(tmp_path),
        "empty": _empty_store(tmp_path),
    }
    argv = [a.format(**files) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    error = [line for line in lines if "error:" in line]
    assert len(error) == 1, captured.err
    assert message in error[0]
    assert "Traceback" not in captured.err
    # Nothing but the usage (for argument errors) besides the error line.
    assert all(line.startswith(("usage:", " ")) for line in lines if line != error[0])


def test_sweep_on_a_dask_scheduler(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    local, remote = tmp_path / "local.sqlite", tmp_path / "dask.sqlite"
    assert main(["sweep", str(local), *GRID]) == 0
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        code = main(
            ["sweep", str(remote), *GRID, "--scheduler", cluster.scheduler_address]
        )
    assert code == 0
    assert "12 solves now, 12 rows" in capsys.readouterr().out
    drop = ("compile_time", "solve_time", "wall_time", "created_at")
    assert (
        ResultStore(remote)
        .to_frame()
        .drop(columns=list(drop))
        .equals(ResultStore(local).to_frame().drop(columns=list(drop)))
    )
