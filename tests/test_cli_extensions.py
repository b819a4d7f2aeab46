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
