"""`kdemo chaos`: drive flows while injecting faults, then audit what the stack kept.

faults.py plans and injects the faults, driver.py runs the flows, audit.py checks the
services' tables and the stream against the answers they gave, run.py ties them together.
No submodule is imported here: `kdemo --help` reads the fault names (`FAULTS`, declared here for
it) without loading faults.py's topology and runtime, nor the wallet and the bus client that
run.py needs.
"""

from typing import Final

__all__ = ["FAULTS"]

FAULTS: Final = ("kill", "stop", "restart")
"""kill: SIGKILL (pods deleted at once); stop: SIGSTOP for longer than the bus waits for a
silent consumer (`faults.redelivery_s`), then SIGCONT; restart: a clean stop (SIGTERM;
postgres' fast shutdown) and start."""
