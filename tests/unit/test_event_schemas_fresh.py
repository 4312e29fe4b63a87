"""The committed event schemas are generated from the event models (no drift)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from services.common import event_models, events

REPO = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    path = REPO / "scripts/gen_event_schemas.py"
    spec = importlib.util.spec_from_file_location("gen_event_schemas", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_match_the_models() -> None:
    """`scripts/gen_event_schemas.py --check` finds every schema file as the models make it."""
    script = _load_script()
    assert script.check() == []
    assert script.main(["--check"]) == 0


def test_check_names_stale_and_orphaned_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check names a schema edited by hand and one whose model is gone, and exits 1."""
    script = _load_script()
    copy = tmp_path / "services/common/schemas"
    shutil.copytree(REPO / "services/common/schemas", copy)
    (copy / "bounty.signed.json").write_text('{"edited": "by hand"}\n')
    (copy / "bounty.cancelled.json").write_text("{}\n")
    monkeypatch.setattr(script, "REPO", tmp_path)
    assert script.check() == [
        "services/common/schemas/bounty.cancelled.json",
        "services/common/schemas/bounty.signed.json",
    ]
    assert script.main(["--check"]) == 1


def test_one_model_per_event() -> None:
    """Every event name has its model, and the model knows its name."""
    assert set(event_models.MODELS) == set(events.EVENT_NAMES)
    for name, model in event_models.MODELS.items():
        assert model.event_name == name


@pytest.mark.parametrize("name", sorted(event_models.MODELS))
def test_models_are_frozen_and_closed(name: str) -> None:
    """A model forbids unknown fields and cannot be changed after it is built."""
    model = event_models.MODELS[name]
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("extra") == "forbid"
    schema: dict[str, Any] = model.model_json_schema()
    assert schema["additionalProperties"] is False


# The JSON Schema keywords a model enforces just as jsonschema does. `make_event` publishes a
# model's data without checking it against the schema, which is sound only while the schemas
# hold no other keyword.
_ENFORCED_BY_MODELS = frozenset(
    {
        "$schema",
        "title",
        "description",
        "type",
        "enum",
        "const",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "anyOf",
        "properties",
        "items",
        "required",
        "additionalProperties",
    }
)


def _keywords(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (keyword, value) in a schema, nested schemas included (not property names)."""
    if isinstance(node, list):
        for item in node:
            yield from _keywords(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _keywords(list(value.values()) if key == "properties" else value)


@pytest.mark.parametrize("name", sorted(event_models.MODELS))
def test_a_model_enforces_all_its_schema_checks(name: str) -> None:
    """Data dumped from a model needs no schema check (so `make_event` skips it): every
    keyword of the schema is one the model enforces the same way (patterns by Python's `re`
    in both), and a `format`, which models leave unchecked, is unchecked by the schema's
    validator too."""
    model = event_models.MODELS[name]
    assert model.model_config.get("regex_engine") == "python-re"
    schema = json.loads((REPO / f"services/common/schemas/{name}.json").read_text())
    format_checker = events._validator(name).format_checker
    assert format_checker is not None
    checked_formats = format_checker.checkers
    found: set[str] = set()
    for keyword, value in _keywords(schema):
        found.add(keyword)
        if keyword == "format":
            assert value not in checked_formats, (
                f"{name}: the schema's validator checks format {value!r} and "
                f"{model.__name__} does not; check it in the model as well"
            )
        else:
            assert keyword in _ENFORCED_BY_MODELS, (
                f"{name}: the schema checks {keyword!r}, which {model.__name__} may not "
                "enforce; make the model enforce it and list it here, or have make_event "
                "check model data against the schema again"
            )
    assert {"type", "properties", "required", "additionalProperties"} <= found
