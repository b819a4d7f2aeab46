"""Arguments of the reproduction sweep (the sweep itself runs in test_cli)."""

import pytest

from assoc_cvx.reproduce import PROFILES, reproduce


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
    ],
)
def test_reproduce_checks_its_arguments_before_running(tmp_path, kwargs, error, match):
    args = {"dims": [3], "n_instances": 1, **kwargs}
    with pytest.raises(error, match=match):
        reproduce(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_profiles():
    assert PROFILES["quick"]["dims"] == (8, 10, 12)
    assert min(PROFILES["default"]["dims"]) == 10
    assert max(PROFILES["default"]["dims"]) == 40
