"""What the dashboard's banner says: one message per concern, set and cleared by its key.

Each concern owns one key, so clearing one (the bus tap answers again) never clears
another's message (the stack is down), and the banner lists them in a fixed order, not in
the order they happened to arrive.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["BANNER_ORDER", "BannerKey", "BannerMessages"]

BannerKey = Literal["stack", "tap", "metrics", "action"]
"""stack: down or its status unreadable; tap: the bus tap; metrics: services not answering
/metrics; action: the latest user action's progress or outcome."""
BANNER_ORDER: tuple[BannerKey, ...] = get_args(BannerKey)


class BannerMessages:
    """Key → message; `lines()` in `BANNER_ORDER`."""

    def __init__(self) -> None:
        self._messages: dict[BannerKey, str] = {}

    def set(self, key: BannerKey, text: str | None) -> bool:
        """Say `text` under `key` (None or "" clears it); True when the banner changed."""
        if not text:
            return self.clear(key)
        if self._messages.get(key) == text:
            return False
        self._messages[key] = text
        return True

    def clear(self, key: BannerKey) -> bool:
        """Drop `key`'s message; True when there was one."""
        return self._messages.pop(key, None) is not None

    def get(self, key: BannerKey) -> str:
        """`key`'s message, "" when it has none."""
        return self._messages.get(key, "")

    def lines(self) -> list[str]:
        return [self._messages[k] for k in BANNER_ORDER if k in self._messages]

    def __bool__(self) -> bool:
        return bool(self._messages)
