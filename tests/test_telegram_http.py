"""The Telegram adapter's HTTP port (bot/adapters/telegram/http.py) as PTB uses it.

Every Telegram test drives it through the fake Bot API; these check what those journeys do
not reach: a file upload arriving as multipart with its parameters, and the errors PTB needs
to tell a slow Bot API from an unreachable one (it retries and reports them differently).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.adapters.telegram.http import AiohttpRequest


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        fields: dict[str, Any] = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                fields[name] = (value.filename, value.file.read(), value.content_type)
            else:
                fields[name] = value
        seen.append({"type": request.content_type, "fields": fields})
        return web.json_response({"ok": True, "result": True})

    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/bot/sendDocument", handle)
    app.router.add_post("/bot/sendMessage", handle)
    app.router.add_post("/bot/stall", stall)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/bot", seen
    await runner.cleanup()


async def test_a_file_upload_arrives_as_multipart_with_its_parameters(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    request = AiohttpRequest()
    await request.initialize()
    try:
        data = RequestData(
            [
                RequestParameter.from_input("chat_id", 42),
                RequestParameter.from_input("caption", "Ваш календарь · 日历"),
                RequestParameter.from_input(
                    "document", InputFile(b"BEGIN:VCALENDAR", filename="session.ics")
                ),
            ]
        )
        status, body = await request.do_request(f"{url}/sendDocument", "POST", data)
    finally:
        await request.shutdown()
    assert status == 200 and b'"ok": true' in body
    [got] = seen
    assert got["type"] == "multipart/form-data"
    assert got["fields"]["chat_id"] == "42"
    assert got["fields"]["caption"] == "Ваш календарь · 日历"
    assert got["fields"]["document"][:2] == ("session.ics", b"BEGIN:VCALENDAR")


async def test_plain_parameters_are_form_encoded(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    request = AiohttpRequest()
    await request.initialize()
    try:
        data = RequestData(
            [
                RequestParameter.from_input("chat_id", 42),
                RequestParameter.from_input("reply_markup", {"inline_keyboard": []}),
            ]
        )
        await request.do_request(f"{url}/sendMessage", "POST", data)
    finally:
        await request.shutdown()
    [got] = seen
    assert got["type"] == "application/x-www-form-urlencoded"
    assert got["fields"] == {"chat_id": "42", "reply_markup": '{"inline_keyboard": []}'}


async def test_a_slow_bot_api_times_out_and_an_unreachable_one_is_a_network_error(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _ = server
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.do_request(f"{url}/stall", "POST", read_timeout=0.2)
        with pytest.raises(NetworkError) as refused:
            await request.do_request(f"http://127.0.0.1:{closed_port}/bot/getMe", "POST")
        assert not isinstance(refused.value, TimedOut)
    finally:
        await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{url}/sendMessage", "POST")
