"""Write the NetworkPolicies of `manifests/` (and the Kafka bus component) from `kdemo/topology.py`.

usage: uv run python scripts/gen_networkpolicies.py [--check]

With --check nothing is written: the exit status is 1 (and the stale files are named)
when the committed policies differ from what the topology says.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from kdemo.runtime.kube.netpol import GENERATED_HEADER, generated_files

ROOT = Path(__file__).resolve().parent.parent / "manifests"
GENERATED_DIRS = (
    "base/networkpolicies",
    "components/github-egress",
    "components/bus-kafka",
    "components/bus-kafka/patches",
)


def rendered() -> dict[Path, str]:
    return {
        ROOT / rel: GENERATED_HEADER + yaml.safe_dump(body, sort_keys=False)
        for rel, body in generated_files().items()
    }


def stale(wanted: dict[Path, str]) -> list[str]:
    """Files that differ, are missing, or are left over in the generated directories."""
    problems = [
        str(p.relative_to(ROOT))
        for p, text in wanted.items()
        if not p.exists() or p.read_text() != text
    ]
    for folder in GENERATED_DIRS:
        for path in sorted((ROOT / folder).glob("*.yaml")):
            if path not in wanted:
                problems.append(f"{path.relative_to(ROOT)} (not generated: delete it)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    wanted = rendered()
    problems = stale(wanted)
    if args.check:
        if problems:
            print("NetworkPolicies drift from kdemo/topology.py:", *problems, sep="\n  ")
            print("fix: uv run python scripts/gen_networkpolicies.py")
            return 1
        return 0
    for folder in GENERATED_DIRS:
        for path in (ROOT / folder).glob("*.yaml"):
            if path not in wanted:
                path.unlink()
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(wanted)} files under {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
