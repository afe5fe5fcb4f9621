"""The hand-written point tables match the SunSpec model definitions in ../shared."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.inverter.sunspec_points import MODELS, Point
from tests.conftest import fixture

IDS = [1, 101, 102, 103, 111, 112, 113, 120, 160, 201, 202, 203, 204, 211, 212, 213, 214]


def _points(points: list[dict[str, Any]], skip_id_and_l: bool) -> tuple[list[Point], int]:
    """The definition's points as table rows (pad left out) and the registers they span."""
    rows: list[Point] = []
    offset = -2 if skip_id_and_l else 0
    for p in points:
        size = p.get("size", 1)
        if not (skip_id_and_l and offset < 0) and p["type"] != "pad":
            rows.append(Point(p["name"], offset, p["type"], size, p.get("sf")))
        offset += size
    return rows, offset


@pytest.mark.parametrize("model_id", IDS)
def test_table_matches_the_model_definition(model_id: int) -> None:
    definition = json.loads(fixture("sunspec", f"models/model_{model_id}.json").read_text())
    assert definition["id"] == model_id
    group = definition["group"]
    rows, length = _points(group["points"], skip_id_and_l=True)
    model = MODELS[model_id]
    assert list(model.points) == rows
    assert model.length == length
    repeating = group.get("groups", [])
    if model.group is None:
        assert repeating == []
        return
    (sub,) = repeating
    sub_rows, sub_length = _points(sub["points"], skip_id_and_l=False)
    assert (model.group.name, model.group.length, list(model.group.points)) == (
        sub["name"], sub_length, sub_rows)


def test_every_scale_factor_named_is_a_point_of_the_model() -> None:
    for model_id, model in MODELS.items():
        sfs = {p.name for p in model.points if p.type == "sunssf"}
        points = [*model.points, *(model.group.points if model.group else ())]
        assert {p.sf for p in points if p.sf} <= sfs, model_id
