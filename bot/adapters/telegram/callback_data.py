"""Button callback data: a core command, signed for the one user it was shown to.

Telegram carries at most 64 bytes back from a button, and a client can send any bytes it likes.
So a payload is sent as `s<minute>.<mac><payload>`: the minute it was issued (base 36) and a MAC
over (user, minute, payload) with a key derived from the bot token. A payload too long for that
is stored in the database (`bot.buttons`) and the button carries `t<token>` instead. Decoding
refuses a bad MAC, another user's button, an unknown token, and anything older than the TTL,
so such a press changes nothing; a valid one is exactly the typed command, checked again by the
core.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from bot import buttons
from bot.app import Marketplace

PLATFORM = "telegram"
MAX_BYTES = 64
MAC_CHARS = 8  # 6 bytes of HMAC-SHA256, base64url
FUTURE_SLACK = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


class CallbackCodec:
    def __init__(self, app: Marketplace, bot_token: str, ttl: timedelta) -> None:
        self._app = app
        self._ttl = ttl
        self._key = hmac.new(
            bot_token.encode(), b"mentorbot callback data v1", hashlib.sha256
        ).digest()

    def _mac(self, user: str, minute: str, payload: str) -> str:
        digest = hmac.new(
            self._key, f"{user}\n{minute}\n{payload}".encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:6]).decode("ascii")

    def _minute(self, now: datetime) -> int:
        return int((now - _EPOCH).total_seconds() // 60)

    async def encode(self, user: str, payloads: list[str]) -> list[str]:
        """Callback data for each payload, shown to Telegram user `user`."""
        now = self._app.clock.now()
        minute = _base36(self._minute(now))
        encoded: list[str] = []
        long: list[int] = []
        for i, payload in enumerate(payloads):
            data = f"s{minute}.{self._mac(user, minute, payload)}{payload}"
            if len(data.encode()) > MAX_BYTES:
                long.append(i)
            encoded.append(data)
        if long:
            async with self._app.new_uow() as uow:
                for i in long:
                    token = await buttons.stash(uow, PLATFORM, user, payloads[i], now)
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
            except ValueError:
                return None
            if not sep or not hmac.compare_digest(mac, self._mac(user, minute, payload)):
                return None
            if not now - self._ttl <= issued <= now + FUTURE_SLACK:
                return None
            return payload
        if data.startswith("t"):
            async with self._app.new_uow() as uow:
                return await buttons.fetch(uow, PLATFORM, user, data[1:], now - self._ttl)
        return None

    async def prune(self) -> int:
        """Forget stored payloads past the TTL."""
        async with self._app.new_uow() as uow:
            count = await buttons.prune(uow, self._app.clock.now() - self._ttl)
            await uow.commit()
        return count
