"""``preset_values``: the one merge rule of every policy's ``apply_preset``."""

from __future__ import annotations

import pytest

from leanrec.search.base import preset_values

PRESETS = {
    "leanrec": {"prior": 1.0, "skip": True, "queue": 50},
    "paper": {"prior": 0.0, "skip": False, "queue": 50},
}
ADDITIONS = {"prior": {"prior": 0.0}, "skip": {"skip": False}}


def test_each_addition_named_in_without_is_turned_off_alone() -> None:
    assert preset_values(PRESETS, ADDITIONS, "leanrec") == PRESETS["leanrec"]
    assert preset_values(PRESETS, ADDITIONS, "leanrec", ("prior",)) == {
        "prior": 0.0,
        "skip": True,
        "queue": 50,
    }
    # both off is the paper preset
    assert preset_values(PRESETS, ADDITIONS, "leanrec", ("prior", "skip")) == PRESETS["paper"]


def test_the_tables_are_not_changed() -> None:
    values = preset_values(PRESETS, ADDITIONS, "leanrec", ("skip",))
    values["queue"] = 8
    assert PRESETS["leanrec"] == {"prior": 1.0, "skip": True, "queue": 50}


def test_unknown_names_are_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'papr'.*\['leanrec', 'paper'\]"):
        preset_values(PRESETS, ADDITIONS, "papr")
    with pytest.raises(ValueError, match=r"unknown additions \['fm'\].*\['prior', 'skip'\]"):
        preset_values(PRESETS, ADDITIONS, "leanrec", ("prior", "fm"))
