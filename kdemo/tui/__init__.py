"""The terminal dashboard (Textual): `kdemo dashboard`.

Imported only by the `dashboard` command, so the rest of the CLI never loads Textual.
"""

from kdemo.tui.app import DashboardApp

__all__ = ["DashboardApp"]
