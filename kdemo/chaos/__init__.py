"""`kdemo chaos`: drive flows while injecting faults, then audit what the stack kept.

faults.py plans and injects the faults, driver.py runs the flows, audit.py checks the
services' tables and the stream against the answers they gave, run.py ties them together.
"""

from kdemo.chaos.faults import FAULTS, parse_faults
from kdemo.chaos.run import ChaosOptions, ChaosReport, run_chaos

__all__ = ["FAULTS", "ChaosOptions", "ChaosReport", "parse_faults", "run_chaos"]
