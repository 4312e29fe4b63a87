# kdemo developer menu — `just` lists the recipes.

export UV_PYTHON_DOWNLOADS := "never"

# list the recipes
default:
    @just --list

# bring the demo up on the local runtime (extra arguments go to `kdemo up`)
up *args:
    ./dev up {{args}}

# stop the demo (add --purge to delete its data and secrets)
down *args:
    uv run kdemo down {{args}}

# run the test suite (arguments go to pytest)
test *args:
    ./dev test {{args}}

# the fast subset, on every core: nothing that starts a server, a stack, a cluster, a
# browser or checkov
test-fast *args:
    ./dev test -n auto -m "not stack and not kind and not slow" {{args}}

# lint and type-check
lint:
    uv run ruff check .
    uv run ruff format --check .
    uv run mypy

# regenerate the gRPC stubs from services/protos/*.proto
protos:
    uv run python scripts/gen_protos.py

# regenerate services/common/schemas/*.json from the event models
event-schemas:
    uv run python scripts/gen_event_schemas.py

# regenerate the topology diagram in README.md and docs/topology.md
diagram:
    uv run python scripts/gen_diagram.py

# run the whole flow against the running stack
smoke *args:
    uv run kdemo smoke {{args}}

# build everything a kind cluster needs without a registry, start the private docker daemon,
# print the settings to eval (`eval "$(just kind-offline)"`); `just kind-offline stop` stops it
kind-offline *args:
    python3 -m scripts.kind_offline {{args}}

# regenerate the NetworkPolicies from the topology
netpol:
    uv run python scripts/gen_networkpolicies.py

# run the benchmarks (figures go to docs/benchmarks.md by hand)
bench:
    uv run python scripts/bench_stack.py
    uv run python scripts/bench_webhook.py
    uv run python scripts/bench_signatures.py
    uv run python scripts/bench_tui.py

# the webhook path side by side with Probot 14.3.2 (wrk and an open loop), CPU per webhook,
# and the CLI's start against kubectl's; needs node, npm and wrk (arguments go to the
# script, e.g. --profile DIR to record github-app and gateway with py-spy)
bench-webhook *args:
    uv run python scripts/bench_webhook.py {{args}}

# signatures at a fixed rate (200/s by default): frontend's answer -> gateway's
# bounty.recorded, p50/p99, CPU per signature (--profile DIR: py-spy on frontend, gateway)
bench-signatures *args:
    uv run python scripts/bench_signatures.py {{args}}
