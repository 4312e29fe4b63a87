"""The stack record (stack.json): older files still read, bad ones a clear error; and the
cluster runtime's one retry through a port-forward. No stack, no cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kdemo.errors import ConfigError, KdemoError, StackNotUp
from kdemo.runtime import get_runtime
from kdemo.runtime.kube import KubernetesRuntime
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.local.secrets import load_secrets
from kdemo.runtime.ports import port_names
from kdemo.runtime.stackfile import (
    STACK_FILE,
    StackRecord,
    delete_stack,
    has_stack,
    load_stack,
    require_stack,
    save_stack,
)

# What the previous version wrote for a local stack (every key, nulls included).
_OLD_LOCAL = {
    "commands": None,
    "context": None,
    "nats_dir": "/state/nats",
    "nodes": None,
    "ports": {name: 5001 + i for i, name in enumerate(port_names())},
    "postgres_dir": "/state/postgres",
    "runtime": "local",
    "urls": {"frontend": "http://127.0.0.1:5004"},  # the URLs are the record's, not derived
}


def test_a_local_stack_of_the_previous_version_is_read(tmp_path: Path) -> None:
    (tmp_path / STACK_FILE).write_text(json.dumps(_OLD_LOCAL, indent=2, sort_keys=True) + "\n")
    stack = load_stack(tmp_path)
    assert stack == StackRecord(
        runtime="local",
        urls={"frontend": "http://127.0.0.1:5004"},
        ports=_OLD_LOCAL["ports"],
        postgres_dir="/state/postgres",
        nats_dir="/state/nats",
    )
    assert stack.bus == "nats"  # a file without `bus` is a NATS stack
    rt = get_runtime(tmp_path)
    assert isinstance(rt, LocalRuntime)
    assert not rt.is_up()  # no supervisor: `status` shows every node down
    assert {row.state for row in rt.status()} == {"down"}
    assert rt.public_urls() == {"frontend": "http://127.0.0.1:5004"}


@pytest.mark.parametrize(
    "old",
    [
        {
            "runtime": "kind",
            "context": "kind-kdemo",
            "cluster": "kdemo",
            "urls": {"gateway": "http://127.0.0.1:6001"},
            "ports": {"gateway": 6001},
            "image": "kdemo:abc",
        },
        {
            "runtime": "kubernetes",
            "context": "prod",
            "registry": None,
            "urls": {"gateway": "https://gw.example"},
            "image": "kdemo:abc",
        },
    ],
)
def test_cluster_stacks_round_trip(tmp_path: Path, old: dict[str, Any]) -> None:
    """A cluster stack of the previous version reads, and saves back to the same JSON
    (nulls aside), with the bus it ran (nats) now written down."""
    (tmp_path / STACK_FILE).write_text(json.dumps(old))
    stack = require_stack(tmp_path)
    assert stack.runtime == old["runtime"]
    assert stack.image == "kdemo:abc"
    save_stack(tmp_path, stack)
    saved = json.loads((tmp_path / STACK_FILE).read_text())
    assert saved == {k: v for k, v in old.items() if v is not None} | {
        "ports": old.get("ports", {}),
        "bus": "nats",
    }
    assert load_stack(tmp_path) == stack


def test_a_file_without_runtime_is_a_local_stack_and_unknown_keys_are_ignored(
    tmp_path: Path,
) -> None:
    (tmp_path / STACK_FILE).write_text(json.dumps({"urls": {}, "from_the_future": 1}))
    stack = load_stack(tmp_path)
    assert stack is not None
    assert stack.runtime == "local"


def test_the_bus_is_recorded_and_read_back(tmp_path: Path) -> None:
    stack = StackRecord(
        runtime="local",
        ports={name: 6001 + i for i, name in enumerate(port_names("kafka"))},
        kafka_dir="/state/kafka",
        bus="kafka",
    )
    save_stack(tmp_path, stack)
    saved = json.loads((tmp_path / STACK_FILE).read_text())
    assert saved["bus"] == "kafka"
    assert saved["kafka_dir"] == "/state/kafka"
    assert load_stack(tmp_path) == stack
    rt = get_runtime(tmp_path)
    assert rt.bus() == "kafka"
    # no supervisor: every node of the Kafka stack is down, the bus node named kafka
    bus_rows = [(r.name, r.kind, r.state, r.url) for r in rt.status() if r.kind == "bus"]
    assert bus_rows == [("kafka", "bus", "down", f"kafka://127.0.0.1:{stack.ports['kafka']}")]


def test_no_stack(tmp_path: Path) -> None:
    assert load_stack(tmp_path) is None
    assert not has_stack(tmp_path)
    with pytest.raises(StackNotUp):
        require_stack(tmp_path)
    delete_stack(tmp_path)  # nothing to delete: no error


def test_save_is_atomic_and_nodes_keep_their_order(tmp_path: Path) -> None:
    stack = StackRecord(runtime="local", nodes=("postgres", "nats"), commands={"calc": ["x"]})
    save_stack(tmp_path, stack)
    assert [p.name for p in tmp_path.iterdir()] == [STACK_FILE]  # no temporary file left
    assert json.loads((tmp_path / STACK_FILE).read_text())["nodes"] == ["postgres", "nats"]
    assert load_stack(tmp_path) == stack
    delete_stack(tmp_path)
    assert not has_stack(tmp_path)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"runtime": 3}', "`runtime` must be a string"),
        ('{"ports": {"nats": "4222"}}', "`ports`"),
        ('{"urls": []}', "`urls` must be a JSON object"),
        ('{"nodes": "nats"}', "`nodes` must be a JSON list"),
        ('{"commands": {"calc": "python"}}', "`commands`"),
        ('{"bus": "rabbitmq"}', "`bus` must be one of nats, kafka, not 'rabbitmq'"),
        ('{"bus": 1}', "`bus` must be a string"),
    ],
)
def test_an_unreadable_record_names_the_file_and_the_fix(
    tmp_path: Path, text: str, named: str
) -> None:
    (tmp_path / STACK_FILE).write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_stack(tmp_path)
    assert str(tmp_path / STACK_FILE) in caught.value.message
    assert named in caught.value.message
    assert "kdemo down --purge" in caught.value.hint
    with pytest.raises(ConfigError):  # every command finds its runtime through the record
        get_runtime(tmp_path)


class _Forwards:
    def __init__(self) -> None:
        self.resets: list[tuple[str, int]] = []

    def reset(self, target: str, port: int) -> None:
        self.resets.append((target, port))


def _kube(tmp_path: Path) -> tuple[KubernetesRuntime, _Forwards]:
    rt = KubernetesRuntime(tmp_path, context="none")
    forwards = _Forwards()
    rt._forwards = forwards  # type: ignore[assignment]
    return rt, forwards


def test_a_forward_that_fails_once_is_renewed_and_tried_again(tmp_path: Path) -> None:
    rt, forwards = _kube(tmp_path)
    answers: list[object] = [OSError("gone"), "ok"]

    def attempt() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    got = rt._through_forward(("svc/x", 1), attempt, (OSError,), lambda e: KdemoError(str(e)))
    assert got == "ok"
    assert forwards.resets == [("svc/x", 1)]


def test_a_forward_that_fails_twice_is_a_kdemo_error(tmp_path: Path) -> None:
    rt, forwards = _kube(tmp_path)

    def attempt() -> str:
        raise OSError("gone")

    with pytest.raises(KdemoError, match="no metrics: gone"):
        rt._through_forward(
            ("svc/x", 1), attempt, (OSError,), lambda e: KdemoError(f"no metrics: {e}")
        )
    assert forwards.resets == [("svc/x", 1)] * 2


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    rt, forwards = _kube(tmp_path)

    def attempt() -> str:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        rt._through_forward(("svc/x", 1), attempt, (OSError,), lambda e: KdemoError(str(e)))
    assert forwards.resets == []


@pytest.mark.parametrize(
    ("content", "said"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "expected a JSON object"),
     ('{"webhook_secret": "x"}', "is not a secrets file kdemo can read")],
)  # fmt: skip
def test_an_unreadable_secrets_file_names_itself_and_the_fix(
    tmp_path: Path, content: str, said: str
) -> None:
    (tmp_path / "secrets.json").write_text(content)
    with pytest.raises(ConfigError, match=said) as refused:
        load_secrets(tmp_path)
    assert str(tmp_path / "secrets.json") in refused.value.message
    assert "kdemo down --purge" in refused.value.hint
