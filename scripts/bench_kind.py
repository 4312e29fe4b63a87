"""Benchmark the kind runtime against anchors measured in the same run; prints the figures.

    eval "$(just kind-offline)"     # where no registry is reachable
    uv run python scripts/bench_kind.py [--repeat 5]

Measured, in this order, on a machine with no kind cluster named `kdemo-bench`:
- the anchor: a bare `kind create cluster` from the same node image (then deleted);
- `kdemo up --runtime kind` from nothing (cluster, load, deploy, rollouts; the image is
  built beforehand so the build is not counted), then again on the deployed stack, then on
  the existing cluster with the namespace deleted;
- the node's memory at rest (the node container's cgroup, all pods and Kubernetes);
- `kdemo kill NODE` to ready again, for a service, the bus and the database;
- `kdemo smoke` on kind and on the local runtime, side by side (median of --repeat).
Absolute times vary twofold between machines: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdemo.runtime.kube import KindRuntime
from kdemo.runtime.kube.conventions import NAMESPACE
from kdemo.runtime.kube.image import build_image, image_reference
from kdemo.runtime.kube.status import pod_ready

CLUSTER = "kdemo-bench"


def run(argv: Sequence[str], env: dict[str, str], timeout: float = 1800) -> float:
    """Run a command to success; its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return took


def kdemo(*args: str, env: dict[str, str]) -> float:
    return run([sys.executable, "-m", "kdemo", *args], env)


def kill_to_ready(runtime: KindRuntime, node: str, env: dict[str, str]) -> float:
    """From `kdemo kill NODE` until a new pod of NODE (a new uid) is Ready."""

    def pods() -> list[Any]:
        return list(
            runtime.core()
            .list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/name={node}")
            .items
        )

    before = {p.metadata.uid for p in pods()}
    start = time.perf_counter()
    kdemo("kill", node, env=env)
    while not any(p.metadata.uid not in before and pod_ready(p) for p in pods()):
        if time.perf_counter() - start > 600:
            sys.exit(f"{node} did not come back in 600 s")
        time.sleep(0.2)  # polling the API
    return time.perf_counter() - start


def node_memory_mib(env: dict[str, str]) -> float:
    out = (
        subprocess.run(
            [
                "docker",
                "stats",
                "--no-stream",
                "--format",
                "{{.MemUsage}}",
                f"{CLUSTER}-control-plane",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        .stdout.split("/")[0]
        .strip()
    )
    value, unit = float(out[:-3]), out[-3:]
    return value * {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}[unit]


def median_smoke(env: dict[str, str], repeat: int) -> float:
    """The median of smoke's own total (its steps, without the CLI's start-up)."""
    totals = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-m", "kdemo", "smoke"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        match = re.search(r"smoke passed: \d+ steps in ([\d.]+) s", done.stdout + done.stderr)
        if done.returncode != 0 or match is None:
            sys.exit(f"smoke failed:\n{done.stderr[-2000:]}")
        totals.append(float(match.group(1)))
    return statistics.median(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="smoke runs per runtime")
    args = parser.parse_args()
    node_image = os.environ.get("KDEMO_KIND_NODE_IMAGE")
    base = {**os.environ, "KDEMO_KIND_CLUSTER": CLUSTER}
    with tempfile.TemporaryDirectory(prefix="kdemo-bench-") as tmp:
        kind_env = {**base, "KDEMO_STATE_DIR": f"{tmp}/kind"}
        local_env = {**base, "KDEMO_STATE_DIR": f"{tmp}/local"}
        build_image(image_reference(), lambda message: None)

        config = Path(tmp) / "kind.yaml"
        image_line = f"  image: {node_image}\n" if node_image else ""
        config.write_text(
            f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: {CLUSTER}\n"
            f"nodes:\n- role: control-plane\n{image_line}"
        )
        anchor = run(["kind", "create", "cluster", "--config", str(config), "--wait", "180s"], base)
        run(["kind", "delete", "cluster", "--name", CLUSTER], base)

        try:
            up_cold = kdemo("up", "--runtime", "kind", env=kind_env)
            up_again = kdemo("up", "--runtime", "kind", env=kind_env)
            run(
                [
                    "kubectl",
                    "--context",
                    f"kind-{CLUSTER}",
                    "delete",
                    "namespace",
                    "kdemo",
                    "--wait",
                ],
                base,
            )
            up_existing = kdemo("up", "--runtime", "kind", env=kind_env)
            time.sleep(30)  # at rest
            memory = node_memory_mib(kind_env)
            runtime = KindRuntime(Path(kind_env["KDEMO_STATE_DIR"]), cluster=CLUSTER)
            kills = {
                n: kill_to_ready(runtime, n, kind_env) for n in ("gateway", "nats", "postgres")
            }
            runtime.close()
            smoke_kind = median_smoke(kind_env, args.repeat)
        finally:
            subprocess.run(
                [sys.executable, "-m", "kdemo", "down"],
                env=kind_env,
                capture_output=True,
                check=False,
            )
        try:
            kdemo("up", env=local_env)
            smoke_local = median_smoke(local_env, args.repeat)
        finally:
            subprocess.run(
                [sys.executable, "-m", "kdemo", "down", "--purge"],
                env=local_env,
                capture_output=True,
                check=False,
            )

    print(f"node image: {node_image or 'kind default'}")
    rows = [
        ("anchor: a bare kind create cluster", anchor),
        ("kdemo up --runtime kind, from nothing", up_cold),
        ("kdemo up --runtime kind, again (no-op)", up_again),
        ("kdemo up --runtime kind, existing cluster", up_existing),
        *[(f"kill {node} -> a new pod ready", took) for node, took in kills.items()],
    ]
    for what, took in rows:
        print(f"{what:<44} {took:7.1f} s  {took / anchor:5.2f}x anchor")
    print(f"{'node memory at rest (docker stats)':<44} {memory:7.0f} MiB")
    print(
        f"{'kdemo smoke, median of ' + str(args.repeat):<44} kind {smoke_kind:.2f} s, "
        f"local {smoke_local:.2f} s ({smoke_kind / smoke_local:.2f}x)"
    )


if __name__ == "__main__":
    main()
