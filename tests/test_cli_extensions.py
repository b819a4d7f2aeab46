"""Command-line options for margins, listwise retrieval and two-layer memories."""

import json

import pytest

from assoc_cvx.cli import main


def test_capacity_with_margin_reports_the_rs_prediction(capsys):
    assert main(["capacity", "--dim", "4", "--instances", "3", "--kappa", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "margin kappa                 0.2" in out
    assert "RS prediction p_c(d, kappa)" in out


def test_capacity_listwise_reports_the_load_and_prediction(tmp_path, capsys):
    path = tmp_path / "r.json"
    argv = ["capacity", "--dim", "4", "--instances", "3", "--listwise", "0.5"]
    assert main([*argv, "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "listwise, r = 0.5" in out
    assert "predicted alpha_c(r) d^2" in out
    data = json.loads(path.read_text())
    assert data["retrieval"] == "listwise"
    assert data["r"] == 0.5


def test_capacity_two_layer_frozen_and_json(tmp_path, capsys):
    path = tmp_path / "t.json"
    argv = ["capacity", "--dim", "4", "--instances", "2", "--hidden-ratio", "0.5"]
    assert main([*argv, "--two-layer", "trained", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hidden width k               2  (beta = 0.5)" in out
    assert "trained p (lower bound)" in out
    data = json.loads(path.read_text())
    assert data["mode"] == "trained"
    for inst in data["instances"]:
        assert inst["frozen"] <= inst["trained"] <= inst["one_layer"]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--kappa", "-1"], "expected a number >= 0"),
        (["--listwise", "0"], "expected a number in (0, 1]"),
        (["--hidden-ratio", "0.5"], "must be given together"),
        (["--two-layer", "frozen"], "must be given together"),
        (
            ["--hidden-ratio", "0.5", "--two-layer", "frozen", "--kappa", "1"],
            "does not combine",
        ),
        (
            ["--hidden-ratio", "0.5", "--two-layer", "frozen", "--rule", "hebbian"],
            "does not combine with --kappa, --listwise, --checkpoint, --rule or "
            "--recall; got --rule",
        ),
        (
            ["--hidden-ratio", "0.5", "--two-layer", "frozen", "--recall", "0.5"],
            "got --recall",
        ),
        (
            [
                *("--hidden-ratio", "0.5", "--two-layer", "trained"),
                *("--rule", "hebbian", "--recall", "0.5"),
            ],
            "got --rule, --recall",
        ),
        (["--kappa", "0.5", "--solver", "HIGHS"], None),
    ],
)
def test_bad_extension_options(extra, match, capsys):
    argv = ["capacity", "--dim", "3", "--instances", "1", *extra]
    if match is None:  # HIGHS cannot decide margins: the others take over
        assert main(argv) == 0
        return
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert match in err
    assert "Traceback" not in err


def test_reproduce_with_the_extension_options(tmp_path, capsys):
    out = tmp_path / "rep"
    argv = ["reproduce", "--dims", "3", "--instances", "2", "--rules", "max_margin"]
    argv += ["--constraints", "coupled", "--steps", "50", "-o", str(out)]
    argv += ["--kappas", "0.3", "0.6", "--listwise", "0.5", "--hidden-ratios", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "[5/5] d3_coupled_two_layer_beta1: frozen" in err
    data = json.loads((out / "results.json").read_text())
    assert [r["kappa"] for r in data["kappa"]] == [0.3, 0.6]
    assert [r["r"] for r in data["listwise"]] == [0.5]
    (two,) = data["two_layer"]
    assert two["k"] == 3
    assert all(f <= t <= o for f, t, o, _ in two["per_instance"])
    report = (out / "report.md").read_text()
    for heading in (
        "## Capacity with a margin kappa",
        "## Listwise retrieval",
        "## Two-layer memories",
    ):
        assert heading in report


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--kappas", "0"], "argument --kappas: expected a number in (0, 10], got 0"),
        (["--kappas", "0.5", "x"], "argument --kappas: expected a number in (0, 10]"),
        (["--kappas", "11"], "argument --kappas: expected a number in (0, 10], got 11"),
        (["--listwise", "1.5"], "argument --listwise: expected a number in (0, 1]"),
        (["--listwise"], "argument --listwise: expected at least one argument"),
        (["--hidden-ratios", "-1"], "argument --hidden-ratios: expected a number > 0"),
    ],
)
def test_reproduce_rejects_bad_extension_values(tmp_path, extra, match, capsys):
    out = tmp_path / "rep"
    with pytest.raises(SystemExit) as info:
        main(["reproduce", "--dims", "3", "-o", str(out), *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert match in err
    assert "Traceback" not in err
    assert not out.exists()


def test_reproduce_help_states_the_bound_of_each_kappa(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "each 0 < K <= 10 (any number of them)" in help_text
