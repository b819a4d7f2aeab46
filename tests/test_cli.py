"""The console script."""

import json
import subprocess
import sys

import pytest

from assoc_cvx.cli import main


def test_capacity_command_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(
        [
            "capacity",
            "--dim",
            "4",
            "--instances",
            "3",
            "--seed",
            "0",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert "capacity p_c (median)" in printed.out
    assert "asymptote" in printed.out
    assert "[3/3]" in printed.err  # progress lines when stderr is not a terminal
    data = json.loads(out.read_text())
    assert data["n_features"] == 4
    assert len(data["instances"]) == 3
    assert data["capacity"] == sorted(i["critical_p"] for i in data["instances"])[1]


def test_console_script_runs_as_installed():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "assoc_cvx.cli",
            "capacity",
            "--dim",
            "3",
            "--instances",
            "2",
            "--constraints",
            "decoupled",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "decoupled" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["capacity", "--dim", "-3"], "expected an integer >= 1"),
        (["capacity", "--dim", "ten"], "expected an integer"),
        (["capacity", "--dim", "4", "--solver", "gurobi"], "invalid choice"),
        (["capacity", "--dim", "4", "--constraints", "both"], "invalid choice"),
        (["capacity", "--dim", "4", "--jobs", "0"], "nonzero"),
        (["capacity"], "required"),
        (
            [
                "capacity",
                "--dim",
                "3",
                "--json",
                "/nonexistent/dir/x.json",
                "--instances",
                "1",
                "--quiet",
            ],
            "No such file or directory",
        ),
    ],
)
def test_bad_command_line_gives_one_line_error(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert match in err
    assert "Traceback" not in err


def test_benchmark_quick_profile_writes_csv(tmp_path):
    from pathlib import Path

    import pandas as pd

    script = Path(__file__).parents[1] / "benchmarks" / "bench_check_storage.py"
    out = tmp_path / "bench.csv"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    assert set(table["constraints"]) == {"coupled", "decoupled"}
    assert (table["agreement"] == "agree").all()
    assert (table["wall_time"] > 0).all()
    assert out.with_suffix(".json").exists()
