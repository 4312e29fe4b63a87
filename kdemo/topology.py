"""The declared topology of kdemo, re-exported from `services.common.topology`.

The data (nodes, edges, what each service publishes and consumes) lives with the
services, which label their edge metrics from it and whose image has no `kdemo`
package. kdemo's runtimes, dashboard and generators import it from here.
"""

from __future__ import annotations

from services.common import topology as _declared
from services.common.topology import *  # noqa: F403 (the whole public surface, re-exported)

__all__ = _declared.__all__
