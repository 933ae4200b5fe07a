"""Button callback data: a core command, signed for the one user it was shown to.

Telegram carries at most 64 bytes back from a button, and a client can send any bytes it likes.
So a payload is sent as `s<minute>.<mac><payload>`: the minute it was issued (base 36) and a MAC
over (user, minute, payload) with a key derived from the bot token. A payload too long for that
is stored in the database (`bot.core.buttons`) and the button carries `t<token>` instead.

A payload that is not a command answers the question the user was asked (a level, a time of
day); its MAC also covers that question (`bot.core.buttons.conversation_marker`), so pressing it
after the conversation moved on is refused rather than taken as the answer to another question.

Decoding refuses a bad MAC, another user's button, an unknown token, a stale answer and anything
older than the TTL, so such a press changes nothing; a valid one is exactly the typed command,
checked again by the core.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from bot.app import Marketplace
from bot.core import buttons

PLATFORM = "telegram"
MAX_BYTES = 64
MAC_CHARS = 8  # 6 bytes of HMAC-SHA256, base64url
FUTURE_SLACK = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_MARKER_END = "\x1e"  # separates the question from an answer stored under a token


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def is_answer(payload: str) -> bool:
    """An answer to the open question rather than a command."""
    return not payload.startswith("/")


class CallbackCodec:
    def __init__(self, app: Marketplace, bot_token: str, ttl: timedelta) -> None:
        self._app = app
        self._ttl = ttl
        self._key = hmac.new(
            bot_token.encode(), b"mentorbot callback data v1", hashlib.sha256
        ).digest()

    def _mac(self, user: str, minute: str, payload: str, marker: str) -> str:
        message = f"{user}\n{minute}\n{marker}\n{payload}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:6]).decode("ascii")

    async def _marker(self, user: str) -> str:
        async with self._app.new_uow() as uow:
            return await buttons.conversation_marker(uow, PLATFORM, user)

    async def encode(self, user: str, payloads: list[str]) -> list[str]:
        """Callback data for each payload, shown to Telegram user `user`."""
        now = self._app.clock.now()
        minute = _base36(int((now - _EPOCH).total_seconds() // 60))
        marker = await self._marker(user) if any(map(is_answer, payloads)) else ""
        encoded: list[str] = []
        long: list[int] = []
        for i, payload in enumerate(payloads):
            bound = marker if is_answer(payload) else ""
            data = f"s{minute}.{self._mac(user, minute, payload, bound)}{payload}"
            if len(data.encode()) > MAX_BYTES:
                long.append(i)
            encoded.append(data)
        if long:
            async with self._app.new_uow() as uow:
                for i in long:
                    stored = payloads[i]
                    if is_answer(stored):
                        stored = f"{marker}{_MARKER_END}{stored}"
                    token = await buttons.stash(uow, PLATFORM, user, stored, now)
                    encoded[i] = f"t{token}"
                await uow.commit()
        return encoded

    async def decode(self, user: str, data: str) -> str | None:
        """The command behind a pressed button, or None if it is forged, foreign or stale."""
        now = self._app.clock.now()
        if data.startswith("s"):
            minute, sep, rest = data[1:].partition(".")
            mac, payload = rest[:MAC_CHARS], rest[MAC_CHARS:]
            try:
                issued = _EPOCH + timedelta(minutes=int(minute, 36))
            except (ValueError, OverflowError):  # not base 36, or a minute past year 9999
                return None
            if not sep or not now - self._ttl <= issued <= now + FUTURE_SLACK:
                return None
            marker = await self._marker(user) if is_answer(payload) else ""
            if not hmac.compare_digest(mac, self._mac(user, minute, payload, marker)):
                return None
            return payload
        if data.startswith("t"):
            async with self._app.new_uow() as uow:
                stored = await buttons.fetch(uow, PLATFORM, user, data[1:], now - self._ttl)
            if stored is None or not is_answer(stored):
                return stored
            marker, _sep, payload = stored.partition(_MARKER_END)
            return payload if marker == await self._marker(user) else None
        return None

    async def prune(self) -> int:
        """Forget stored payloads past the TTL."""
        async with self._app.new_uow() as uow:
            count = await buttons.prune(uow, self._app.clock.now() - self._ttl)
            await uow.commit()
        return count
