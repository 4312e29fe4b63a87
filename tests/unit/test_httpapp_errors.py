"""services.common.httpapp: every answer, an unexpected exception's too, is the error shape."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from services.common.httpapp import ApiError, ErrorBody, install_common_routes


def _app() -> FastAPI:
    app = FastAPI()
    install_common_routes(app, ready=lambda: True)

    @app.get("/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("a bug")

    @app.get("/refused")
    async def refused() -> dict[str, str]:
        raise ApiError(409, "conflict", "already there", field="x", hint="look")

    return app


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_an_unexpected_exception_is_a_json_500_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="services.common.httpapp"):
        response = await _get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    body = ErrorBody.model_validate(response.json())
    assert body.error.code == "internal_error"
    assert body.error.field is None
    assert body.error.hint
    assert "a bug" not in response.text  # the cause stays in the log
    [record] = [r for r in caplog.records if r.name == "services.common.httpapp"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert record.__dict__["path"] == "/boom"


async def test_the_other_answers_are_unchanged() -> None:
    refused = await _get("/refused")
    assert refused.status_code == 409
    assert refused.json() == {
        "error": {"code": "conflict", "message": "already there", "field": "x", "hint": "look"}
    }
    missing = await _get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "http_error"
    ready = await _get("/readyz")
    assert ready.json() == {"status": "ready"}
