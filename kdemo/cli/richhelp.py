"""Typer's help renderer, loaded without the two Rich modules kdemo's help never uses.

Every `--help` is drawn by `typer.rich_utils`, which imports `rich.markdown` (and with it
markdown-it) for the "markdown" markup mode, and `rich.traceback` for pretty exception
dumps, at its top. kdemo uses neither: its markup mode is "rich" and pretty exceptions are
off (errors are one line, see `KdemoGroup`). Loading both was about a third of what
`kdemo --help` took, so `load_rich_utils` imports `typer.rich_utils` with stand-ins for
their two names: a stand-in loads the real class the first time it is called or asked
for an attribute, so the help is drawn by the same code, and a markdown help or a rich
traceback would still work. The stand-in modules are only in `sys.modules` while
`typer.rich_utils` is imported: anything importing `rich.markdown` later gets the real one.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["DEFERRED", "load_rich_utils"]

DEFERRED: dict[str, tuple[str, ...]] = {
    "rich.markdown": ("Markdown",),
    "rich.traceback": ("Traceback",),
}
"""The modules `typer.rich_utils` gets stand-ins for, and the names it imports from them."""


class _StandIn(type):
    """The type of a stand-in class: calling it, or any attribute of it, loads the real one."""

    _module: str
    _name: str

    def _real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls._name)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, attr: str) -> Any:  # only for what the stand-in does not have
        return getattr(cls._real(), attr)


def _stand_in_module(module: str, names: tuple[str, ...]) -> types.ModuleType:
    stand_in = types.ModuleType(module, f"stand-in for {module} (see {__name__})")
    for name in names:
        setattr(stand_in, name, _StandIn(name, (), {"_module": module, "_name": name}))
    return stand_in


def load_rich_utils() -> None:
    """Import `typer.rich_utils` (once), without loading `rich.markdown`/`rich.traceback`.

    A Typer that imports other names from them fails with the stand-ins: it is then
    imported the ordinary way, with both modules.
    """
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {
        module: _stand_in_module(module, names)
        for module, names in DEFERRED.items()
        if module not in sys.modules  # loaded already: nothing to save
    }
    sys.modules.update(stand_ins)
    try:
        import typer.rich_utils  # Typer's own `from . import rich_utils` then finds it loaded
    except ImportError:
        pass  # a failed import leaves no typer.rich_utils behind: imported again below
    finally:
        for module, stand_in in stand_ins.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]
    if "typer.rich_utils" not in sys.modules:
        import typer.rich_utils  # noqa: F401 (the ordinary import, with both modules)
