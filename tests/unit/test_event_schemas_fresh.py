"""The committed event schemas are generated from the event models (no drift)."""

from __future__ import annotations

import importlib.util
import shutil
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
