"""The Telegram adapter (python-telegram-bot 22): the whole marketplace inside Telegram chats.

- `service`: the Application, its handlers, start/stop in polling or webhook mode.
- `outgoing`: replies as messages with inline keyboards, documents and Stars invoices.
- `callback_data`: signed, per-user, expiring button data (64-byte limit).
- `flow_control`: flood limits with 429 retries; per-user ordering of updates.
- `commands`: the setMyCommands menus in English and Chinese.
- `webhook`: the route on the project's web server, guarded by the secret token.
"""

from bot.adapters.telegram.service import TelegramService, build_application

__all__ = ["TelegramService", "build_application"]
