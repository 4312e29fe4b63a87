"""Failpoints: the spec's grammar, its errors, the two actions, and the nak delays they drive."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from services.common import failpoints
from services.common.bus import MAX_NAK_DELAY, nak_delay
from services.common.failpoints import FailpointError, FailpointSpecError, failpoint
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    yield
    failpoints.arm("")


def test_spec_names_action_and_count() -> None:
    """A bare name crashes; `=error` fails; `N*` limits the hits that fire."""
    armed = failpoints.parse(" outbox.after_commit , consumer.after_write=3*error,")
    assert {n: (a.action, a.remaining) for n, a in armed.items()} == {
        "outbox.after_commit": ("crash", None),
        "consumer.after_write": ("error", 3),
    }
    assert failpoints.parse("") == {}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("outbox.after_comit", "unknown failpoint 'outbox.after_comit'; known: consumer."),
        ("consumer.after_write=explode", "consumer.after_write: unknown action 'explode'"),
        ("consumer.after_write=0*error", "'0' is not a positive count"),
        ("consumer.after_write=x*error", "write e.g. consumer.after_write=3*error"),
    ],
)
def test_bad_spec_names_the_variable_the_part_and_the_fix(spec: str, words: str) -> None:
    with pytest.raises(FailpointSpecError, match="KDEMO_FAILPOINTS") as caught:
        failpoints.parse(spec)
    assert words in str(caught.value)


def test_bad_spec_stops_the_service_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        failpoints.arm_or_exit("gateway", {"KDEMO_FAILPOINTS": "nowhere"})
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("gateway: KDEMO_FAILPOINTS: unknown failpoint")


def test_unarmed_points_pass_and_error_fires_only_its_count() -> None:
    failpoint("consumer.after_write")  # nothing armed: returns
    failpoints.arm_or_exit("gateway", {"KDEMO_FAILPOINTS": "consumer.after_write=2*error"})
    failpoint("outbox.after_commit")  # armed set, another name: returns
    for _ in range(2):
        with pytest.raises(FailpointError, match=r"consumer\.after_write"):
            failpoint("consumer.after_write")
    failpoint("consumer.after_write")  # the third hit passes


def test_crash_exits_at_once_without_cleanup() -> None:
    """137, one line on stderr, and neither buffered output nor atexit handlers run."""
    code = (
        "import atexit, sys\n"
        "from services.common.failpoints import arm_or_exit, failpoint\n"
        "atexit.register(lambda: sys.stderr.write('cleanup ran\\n'))\n"
        "arm_or_exit('gateway')\n"
        "sys.stdout.write('buffered, never flushed')\n"
        "failpoint('outbox.after_publish')\n"
        "sys.stderr.write('went on\\n')\n"
    )
    unset = ("KDEMO_", "PYTHONUNBUFFERED")  # unbuffered output would show up despite the crash
    env = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    env["KDEMO_FAILPOINTS"] = "outbox.after_publish=crash"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (failpoints.CRASH_STATUS, "")
    assert result.stderr.endswith("failpoint outbox.after_publish: crash\n")
    assert "cleanup ran" not in result.stderr
    assert "went on" not in result.stderr


def test_nak_delays_double_from_a_quarter_second_up_to_30_s() -> None:
    assert [nak_delay(n) for n in range(1, 10)] == [0.25, 0.5, 1, 2, 4, 8, 16, 30, 30]
    assert nak_delay(10_000) == MAX_NAK_DELAY == 30
