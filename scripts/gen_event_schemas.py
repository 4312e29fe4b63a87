"""Generate services/common/schemas/<name>.json from the event models.

    uv run python scripts/gen_event_schemas.py            # regenerate in place
    uv run python scripts/gen_event_schemas.py --check    # exit 1 naming stale files

The models in services/common/event_models.py are the source; the JSON Schemas are
what `events.py` validates every event's `data` against at publish and consume, and
what a consumer in another language would read. Nested models are inlined (no
`$defs`), property titles are left out and keys come in a fixed order, so a file
changes only when its model does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema

from services.common.event_models import MODELS, EventData

__all__ = ["REPO", "SCHEMA_DIR", "check", "main", "render", "schema_for"]

REPO = Path(__file__).resolve().parents[1]
SCHEMA_DIR = Path("services/common/schemas")
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_KEY_ORDER = (
    "$schema",
    "title",
    "description",
    "type",
    "enum",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "anyOf",
    "properties",
    "items",
    "required",
    "additionalProperties",
)


class _Generator(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False  # the property name is its title


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace every `$ref` into `$defs` by the definition, keys in a fixed order."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(defs[node["$ref"].removeprefix("#/$defs/")], defs)
    rank = {key: i for i, key in enumerate(_KEY_ORDER)}
    ordered = sorted(node, key=lambda key: (rank.get(key, len(rank)), key))
    return {
        key: (
            {name: _inline(sub, defs) for name, sub in node[key].items()}
            if key == "properties"
            else _inline(node[key], defs)
        )
        for key in ordered
    }


def schema_for(model: type[EventData]) -> dict[str, Any]:
    raw = model.model_json_schema(schema_generator=_Generator)
    defs = raw.pop("$defs", {})
    raw.update(title=model.event_name, description=model.description)
    return {"$schema": _DIALECT, **_inline(raw, defs)}


def render(model: type[EventData]) -> str:
    return json.dumps(schema_for(model), indent=2, ensure_ascii=False) + "\n"


def check() -> list[str]:
    """Files in services/common/schemas that differ from the models, or have no model."""
    target = REPO / SCHEMA_DIR
    stale = [
        f"{SCHEMA_DIR}/{path.name}" for path in target.glob("*.json") if path.stem not in MODELS
    ]
    for name, model in MODELS.items():
        path = target / f"{name}.json"
        if not path.is_file() or path.read_text("utf-8") != render(model):
            stale.append(f"{SCHEMA_DIR}/{name}.json")
    return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if any file is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = check()
        if stale:
            print(
                "stale event schemas: "
                + ", ".join(stale)
                + "\nhint: run `just event-schemas` and commit the result",
                file=sys.stderr,
            )
            return 1
        print("event schemas are up to date")
        return 0
    target = REPO / SCHEMA_DIR
    for path in target.glob("*.json"):
        if path.stem not in MODELS:
            path.unlink()
            print(f"removed {SCHEMA_DIR}/{path.name}")
    for name, model in MODELS.items():
        (target / f"{name}.json").write_text(render(model), "utf-8")
        print(f"wrote {SCHEMA_DIR}/{name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
