"""The console script."""

import json
import shutil
import subprocess
import sys
import warnings

import pytest

import assoc_cvx.cli as cli_module
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
    assert "95% interval              n/a (too few instances)" in printed.out
    data = json.loads(out.read_text())
    assert data["n_features"] == 4
    assert len(data["instances"]) == 3
    assert data["capacity"] == sorted(i["critical_p"] for i in data["instances"])[1]


def test_console_script_runs_as_installed():
    script = shutil.which("assoc-cvx")
    if script is None:
        pytest.skip("the assoc-cvx console script is not on PATH (pip install -e .)")
    done = subprocess.run(
        [
            script,
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


def _not_run(*args, **kwargs):
    raise AssertionError("the run started before the arguments were checked")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["capacity", "--dim", "-3"], "expected an integer >= 1"),
        (["capacity", "--dim", "ten"], "expected an integer"),
        (["capacity", "--dim", "4", "--solver", "gurobi"], "invalid choice"),
        (["capacity", "--dim", "4", "--constraints", "both"], "invalid choice"),
        (["capacity", "--dim", "4", "--jobs", "0"], "nonzero"),
        (["capacity", "--dim", "4", "--jobs", "x"], "expected an integer"),
        (["capacity", "--dim", "4", "--seed", "-1"], "expected an integer >= 0"),
        (["capacity", "--dim", "4", "--p-max", "1"], "expected an integer >= 2"),
        (["capacity"], "required"),
        (["capacity", "--dim", "3", "--json", ""], "--json needs a file name"),
        (
            ["capacity", "--dim", "3", "--json", "{tmp}/missing/x.json"],
            "directory {tmp}/missing does not exist",
        ),
        (["capacity", "--dim", "3", "--json", "{tmp}"], "is a directory"),
        (
            ["capacity", "--dim", "3", "--checkpoint", "{tmp}/missing/run.jsonl"],
            "directory {tmp}/missing does not exist",
        ),
        (["capacity", "--dim", "3", "--checkpoint", ""], "--checkpoint needs a file"),
        (
            ["capacity", "--dim", "3", "--json", "{tmp}/a", "--checkpoint", "{tmp}/a"],
            "--json and --checkpoint must be different files",
        ),
        (
            [
                "capacity",
                "--dim",
                "3",
                "--json",
                "{tmp}/a",
                "--checkpoint",
                "{tmp}/../{name}/a",
            ],
            "--json and --checkpoint must be different files",
        ),
    ],
)
def test_bad_command_line_gives_one_line_error(
    argv, match, capsys, tmp_path, monkeypatch
):
    monkeypatch.setattr(cli_module, "find_capacity", _not_run)

    def fill(text):
        return text.format(tmp=tmp_path, name=tmp_path.name)

    with pytest.raises(SystemExit) as exit_info:
        main([fill(a) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fill(match) in err
    assert len(err.strip().splitlines()) == 1 or "usage:" in err
    assert "Traceback" not in err


def test_programming_errors_are_not_disguised(monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(cli_module, "find_capacity", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["capacity", "--dim", "3"])


def test_warnings_are_one_line_on_stderr_and_handler_is_restored(capsys):
    before = warnings.showwarning
    code = main(["capacity", "--dim", "4", "--instances", "2", "--p-max", "3"])
    assert code == 0
    assert warnings.showwarning is before
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1
    assert lines[0].startswith("assoc-cvx: warning: 2 of 2 instances")
    assert "p_max=3" in lines[0]
    assert "RuntimeWarning" not in err


def test_interrupted_run_says_how_to_resume(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "find_capacity", interrupted)
    path = tmp_path / "run.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        main(["capacity", "--dim", "3", "--checkpoint", str(path)])
    assert exit_info.value.code == 130
    assert "rerun the same command to resume" in capsys.readouterr().err


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


def test_reproduce_tiny_sweep_writes_the_report_and_resumes(tmp_path, capsys):
    import json
    from pathlib import Path

    out = tmp_path / "rep"
    argv = ["reproduce", "--dims", "4", "5", "--instances", "3", "--steps", "200"]
    assert main([*argv, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "report written to" in captured.out
    assert "[20/20] d5_decoupled_gradient_r99" in captured.err
    report = (out / "report.md").read_text()
    for heading in (
        "## Exact capacity against theory",
        "## Learning rules against the exact capacity",
        "## Mechanism at d = 5",
    ):
        assert heading in report
    for name in (
        "fraction_storable",
        "alpha_drift",
        "capacity_by_rule",
        "scores",
        "spectra",
    ):
        assert (out / f"{name}.png").stat().st_size > 1000
        assert f"({name}.png)" in report
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 2 * 2 * 5
    by_cell = {(r["d"], r["constraints"], r["rule"], r["recall"]): r for r in rows}
    for (d, c, _rule, _recall), r in by_cell.items():
        exact = by_cell[d, c, "max_margin", 1.0]["critical_p"]
        assert all(a <= b for a, b in zip(r["critical_p"], exact, strict=True))
    checkpoints = sorted((out / "checkpoints").glob("*.jsonl"))
    assert len(checkpoints) == 20
    sizes = [p.stat().st_size for p in checkpoints]
    # a rerun takes every instance from the checkpoints
    assert main([*argv, "-o", str(out), "--quiet"]) == 0
    assert [p.stat().st_size for p in checkpoints] == sizes
    again = json.loads((out / "results.json").read_text())["rows"]
    assert [r["critical_p"] for r in again] == [r["critical_p"] for r in rows]
    assert capsys.readouterr().err == ""
    script = Path(__file__).parents[1] / "benchmarks" / "reproduce.py"
    assert script.exists()


def test_reproduce_rejects_a_file_as_output(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "--dims", "3", "-o", str(target)])
    assert exit_info.value.code == 2
    assert "is not a directory" in capsys.readouterr().err


def test_capacity_command_measures_a_learning_rule(capsys):
    assert (
        main(["capacity", "--dim", "5", "--instances", "3", "--rule", "hebbian"]) == 0
    )
    out = capsys.readouterr().out
    assert "rule (lower bound)        hebbian, recall 1" in out
    with pytest.raises(SystemExit):
        main(["capacity", "--dim", "5", "--recall", "0.5"])
    assert "recall must be 1.0 with rule='max_margin'" in capsys.readouterr().err
