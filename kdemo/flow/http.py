"""Small HTTP helpers shared by the flow: clients, error answers and transport failures."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from kdemo.errors import KdemoError

__all__ = [
    "DEFAULT_TIMEOUT",
    "STACK_HINT",
    "ServiceRefused",
    "describe_transport_error",
    "json_answer",
    "new_client",
]

DEFAULT_TIMEOUT = 10.0
STACK_HINT = "stack not up? run `kdemo up`"


class ServiceRefused(KdemoError):
    """A service answered with an error status; `status` says whether trying again may help."""

    def __init__(self, message: str, hint: str, status: int) -> None:
        super().__init__(message, hint)
        self.status = status

    @property
    def transient(self) -> bool:
        """5xx and 429: the service could not take it now, the same request may pass later."""
        return self.status >= 500 or self.status == 429


def new_client(timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    """A client for the stack's public URLs (JSON answers, no proxies from the environment)."""
    # trust_env=False: the stack is on loopback, a proxy configured for the internet must
    # never see these requests.
    return httpx.Client(
        timeout=timeout,
        headers={"Accept": "application/json", "User-Agent": "kdemo-cli"},
        trust_env=False,
    )


def describe_transport_error(exc: httpx.TransportError) -> KdemoError:
    """Turn a connection failure into a one-line error naming where it was going."""
    where = ""
    try:
        url = exc.request.url
        where = f" {url.scheme}://{url.netloc.decode()}"
    except RuntimeError:  # the exception was raised before a request existed
        where = ""
    if isinstance(exc, httpx.TimeoutException):
        return KdemoError(f"timed out talking to{where or ' the stack'}", STACK_HINT)
    reason = str(exc) or type(exc).__name__
    return KdemoError(f"cannot reach{where or ' the stack'}: {reason}", STACK_HINT)


def json_answer(response: httpx.Response, what: str) -> Any:
    """The JSON body of a successful answer, or a KdemoError carrying the service's own error.

    `what` names the request in the error ("frontend GET /api/intents"), so the user
    knows which step failed.
    """
    if response.is_success:
        try:
            return response.json()
        except ValueError as exc:
            raise KdemoError(
                f"{what} answered {response.status_code} with a body that is not JSON",
                f"is {_origin(response)} really a kdemo service?",
            ) from exc
    message, hint = _error_fields(response)
    raise ServiceRefused(
        f"{what} failed with {response.status_code}: {message}", hint, response.status_code
    )


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return (text[0][:200] if text else response.reason_phrase), ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("code") or response.reason_phrase)
        hint = str(error.get("hint") or "")
        return _said_once(message, str(error.get("field") or ""), hint)
    if isinstance(body, dict) and "detail" in body:  # FastAPI's own validation answers
        return str(body["detail"])[:300], ""
    return response.reason_phrase, ""


def _said_once(message: str, field: str, hint: str) -> tuple[str, str]:
    """The service's message naming its field once, and its hint only when not already said.

    The services' messages usually begin with the field (`state: 'x' is not a bounty
    state`); only a message that does not name it gets `field: ` in front.
    """
    message = message.strip().rstrip(".;")
    if field and field.lower() not in message.lower():
        message = f"{field}: {message}"
    if hint and _plain(hint) in _plain(message):
        hint = ""
    return message, hint


def _plain(text: str) -> str:
    return " ".join(text.lower().replace(";", " ").split())


def _origin(response: httpx.Response) -> str:
    parts = urlsplit(str(response.request.url))
    return f"{parts.scheme}://{parts.netloc}"
