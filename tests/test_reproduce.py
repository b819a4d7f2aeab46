"""Arguments of the reproduction sweep and its extension sections.

The top-1 sweep itself runs in test_cli; the margin, listwise and two-layer
sections run here at d = 4 with 6 instances.
"""

import json

import pytest

import assoc_cvx.capacity as capacity_module
import assoc_cvx.reproduce as reproduce_module
from assoc_cvx import find_capacity
from assoc_cvx.reproduce import PROFILES, reproduce
from assoc_cvx.theory import listwise_alpha, rs_capacity


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dims": []}, ValueError, "dims must hold at least one dimension"),
        ({"dims": [1]}, ValueError, "dims must be an integer >= 2"),
        ({"rules": ["oja"]}, ValueError, "rules must be among 'max_margin'"),
        ({"constraint_sets": ["both"]}, ValueError, "constraint_sets must be among"),
        ({"analysis_dim": 7}, ValueError, "analysis_dim must be one of dims"),
        ({"gradient_params": {"lr": 1}}, ValueError, "unknown gradient settings"),
        ({"n_instances": 0}, ValueError, "n_instances must be an integer >= 1"),
        (
            {"kappas": [0.5, 0]},
            ValueError,
            r"kappas must be a finite number in \(0.0, 10.0\]; got 0.0",
        ),
        ({"kappas": [11]}, ValueError, r"in \(0.0, 10.0\]; got 11.0"),
        ({"kappas": 0.5}, TypeError, "kappas must be a sequence of numbers; got 0.5"),
        ({"kappas": "0.5"}, TypeError, "kappas must be a sequence of numbers"),
        ({"listwise": [1.5]}, ValueError, r"listwise must be a number in \(0, 1\]"),
        ({"listwise": [None]}, TypeError, "listwise must be a number in"),
        (
            {"hidden_ratios": [-1]},
            ValueError,
            "hidden_ratios must be a positive finite number; got -1",
        ),
        ({"hidden_ratios": [float("nan")]}, ValueError, "got nan"),
        ({"constraint_sets": ()}, ValueError, "constraint_sets must hold at least one"),
        ({"constraint_sets": "coupled"}, TypeError, "sequence of strings; got 'co"),
        ({"dims": 3}, TypeError, "dims must be a sequence of integers; got 3 of type"),
        ({"dims": None}, TypeError, "dims must be a sequence of integers; got None"),
        ({"dims": ["3"]}, TypeError, "dims must be an integer >= 2; got '3'"),
        (
            {"rules": "hebbian"},
            TypeError,
            "rules must be a sequence of strings; got 'h",
        ),
        ({"rules": [None]}, ValueError, "rules must be among .*; got None"),
        (
            {"log": 3},
            TypeError,
            "log must be a callable taking one str, or None; got 3",
        ),
    ],
)
def test_reproduce_checks_its_arguments_before_running(tmp_path, kwargs, error, match):
    args = {"dims": [3], "n_instances": 1, **kwargs}
    with pytest.raises(error, match=match):
        reproduce(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


class _StopAtTheCells(Exception):
    """Raised by a stand-in for the cell list, so that nothing is measured."""


def test_repeated_values_are_measured_once(tmp_path, monkeypatch):
    cells = []

    def record(dims, constraint_sets, rules):
        cells.append((dims, constraint_sets, rules))
        raise _StopAtTheCells

    monkeypatch.setattr(reproduce_module, "_cells", record)
    with pytest.raises(_StopAtTheCells):
        reproduce(
            tmp_path / "out",
            dims=[3, 3, 4],
            constraint_sets=["coupled", "coupled"],
            rules=["hebbian", "hebbian"],
            n_instances=1,
        )
    assert cells == [([3, 4], ["coupled"], ["max_margin", "hebbian"])]


def test_profiles():
    assert PROFILES["quick"]["dims"] == (8, 10, 12)
    assert min(PROFILES["default"]["dims"]) == 10
    assert max(PROFILES["default"]["dims"]) == 40


D, N_INSTANCES, KAPPA, R, BETA, SEED = 4, 6, 0.5, 0.5, 0.5, 3


def _tiny(out, **kwargs):
    return reproduce(
        out,
        dims=[D],
        n_instances=N_INSTANCES,
        constraint_sets=["coupled"],
        rules=["max_margin"],
        random_state=SEED,
        gradient_params={"max_iter": 100},
        **kwargs,
    )


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    out = tmp_path_factory.mktemp("extended")
    messages = []
    result = _tiny(
        out, kappas=[KAPPA], listwise=[R], hidden_ratios=[BETA], log=messages.append
    )
    return result, messages


def test_kappa_section_matches_a_direct_run(extended):
    result, messages = extended
    (row,) = result.extensions["kappa"]
    direct = find_capacity(D, kappa=KAPPA, n_instances=N_INSTANCES, random_state=SEED)
    assert row["critical_p"] == [i.critical_p for i in direct.instances]
    assert row["capacity"] == direct.capacity
    assert row["interval"] == list(direct.interval)
    assert row["rs"] == rs_capacity(D, KAPPA)
    assert row["ratio"] == pytest.approx(direct.capacity / rs_capacity(D, KAPPA))
    # a margin can only lower the capacity of each instance
    exact = result.rows[0]["critical_p"]
    assert all(a <= b for a, b in zip(row["critical_p"], exact, strict=True))
    report = result.report.read_text()
    assert "## Capacity with a margin kappa" in report
    assert (
        f"| {D} | coupled | {KAPPA:g} | {direct.capacity:.1f} | "
        f"[{direct.interval[0]:g}, {direct.interval[1]:g}] | "
        f"{rs_capacity(D, KAPPA):.1f} | "
        f"{direct.capacity / rs_capacity(D, KAPPA):.2f} |"
    ) in report
    assert any(m.startswith("[2/4] d4_coupled_kappa0.5: p_c = ") for m in messages)


def test_listwise_section_matches_a_direct_run_and_the_prediction(extended):
    result, _ = extended
    (row,) = result.extensions["listwise"]
    direct = find_capacity(
        D,
        retrieval="listwise",
        r=R,
        n_instances=N_INSTANCES,
        random_state=SEED,
    )
    assert row["critical_p"] == [i.critical_p for i in direct.instances]
    assert row["prediction"] == pytest.approx(listwise_alpha(R) * D**2)
    assert row["load"] == pytest.approx(direct.capacity / D**2)
    assert row["ratio"] == pytest.approx(direct.capacity / (listwise_alpha(R) * D**2))
    # beating the mean of the top rK competitors puts the target among the
    # top ceil(rK): the listwise W at critical p must have full top-q recall
    assert row["n_recall"] == N_INSTANCES
    assert row["topq_recall"] == 1.0
    assert 0 <= row["top1_recall"] < 1.0
    report = result.report.read_text()
    assert "## Listwise retrieval" in report
    assert f"| {listwise_alpha(R):.3f} | {listwise_alpha(R) * D**2:.1f} |" in report


def test_two_layer_section_orders_frozen_trained_one_layer(extended):
    result, _ = extended
    (row,) = result.extensions["two_layer"]
    assert row["k"] == round(BETA * D)
    assert len(row["per_instance"]) == N_INSTANCES
    for frozen, trained, one_layer, _method in row["per_instance"]:
        assert frozen <= trained <= one_layer
    assert row["n_ordered"] == N_INSTANCES
    # the one-layer capacity is measured on the very instances of the sweep
    one_layer = [one for _, _, one, _ in row["per_instance"]]
    assert one_layer == result.rows[0]["critical_p"]
    assert row["rs_frozen"] == rs_capacity(D, n_hidden=row["k"])
    report = result.report.read_text()
    section = report[report.index("## Two-layer memories") :]
    assert "lower bound" in section
    assert "frozen <= trained <= one layer held on every instance." in section
    assert f"| {BETA:g} ({row['k']}) | {row['frozen']:.1f} |" in section


def test_extension_rows_are_in_results_json(extended):
    result, _ = extended
    data = json.loads((result.output_dir / "results.json").read_text())
    for section in ("kappa", "listwise", "two_layer"):
        assert data[section] == result.extensions[section]


def test_a_rerun_resumes_every_extension_cell(extended, monkeypatch):
    result, _ = extended
    out = result.output_dir
    checkpoints = sorted((out / "checkpoints").iterdir())
    before = {p.name: p.read_bytes() for p in checkpoints}
    assert "d4_coupled_two_layer_beta0.5.json" in before

    def no_solve(*args, **kwargs):
        raise AssertionError("a resumed cell was solved again")

    # instances settled by a checkpoint never reach the bisection, and a
    # stored two-layer cell or listwise recall is not recomputed
    monkeypatch.setattr(capacity_module, "_bisect", no_solve)
    monkeypatch.setattr(reproduce_module, "find_two_layer_capacity", no_solve)
    monkeypatch.setattr(reproduce_module, "check_listwise", no_solve)
    messages = []
    again = _tiny(
        out, kappas=[KAPPA], listwise=[R], hidden_ratios=[BETA], log=messages.append
    )
    after = {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()}
    assert after == before
    for section, rows in result.extensions.items():
        for new, old in zip(again.extensions[section], rows, strict=True):
            assert {k: v for k, v in new.items() if k != "elapsed"} == {
                k: v for k, v in old.items() if k != "elapsed"
            }
    assert any("stored cell reused" in m for m in messages)


def test_a_two_layer_cell_of_other_settings_is_not_reused(tmp_path):
    path = tmp_path / "cell.json"
    path.write_text(json.dumps({"key": {"n_instances": 6}, "value": {"frozen": 1}}))
    assert reproduce_module._read_cell(path, {"n_instances": 6}) == {"frozen": 1}
    assert reproduce_module._read_cell(path, {"n_instances": 7}) is None
    path.write_text("{not json")
    assert reproduce_module._read_cell(path, {"n_instances": 6}) is None
    assert reproduce_module._read_cell(tmp_path / "missing.json", {}) is None


def test_no_extension_sections_without_the_options(tmp_path):
    result = _tiny(tmp_path / "plain")
    assert result.extensions == {}
    report = result.report.read_text()
    for heading in ("margin kappa", "Listwise retrieval", "Two-layer memories"):
        assert heading not in report
    data = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert set(data) == {"rows", "mechanism"}
