"""Rendering the core's replies as Telegram messages.

Text goes as plain text (user content is never parsed as markup), split at Telegram's 4096
characters, with the choices as an inline keyboard under the last part: link choices become URL
buttons, the others carry their command as signed callback data. Attachments are sent as
documents and an invoice as a Stars invoice (currency XTR, empty provider token).
"""

from __future__ import annotations

from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LabeledPrice
from telegram.constants import InvoiceLimit, MessageLimit

from bot.adapters.telegram.callback_data import CallbackCodec
from bot.core.replies import RenderedChoice, Reply

ROW_CHARS = 30  # labels packed into one keyboard row while their total fits
ROW_BUTTONS = 5
MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut at line breaks where possible; never return an empty part."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text or not parts:
        parts.append(text or "…")
    return parts


def rows(choices: tuple[RenderedChoice, ...]) -> list[list[RenderedChoice]]:
    """Short labels share a row (★ ratings, Accept/Decline); long ones get a row each."""
    out: list[list[RenderedChoice]] = []
    width = 0
    for choice in choices:
        if out and len(out[-1]) < ROW_BUTTONS and width + len(choice.label) <= ROW_CHARS:
            out[-1].append(choice)
            width += len(choice.label)
        else:
            out.append([choice])
            width = len(choice.label)
    return out


class Outgoing:
    def __init__(self, bot: Bot, codec: CallbackCodec) -> None:
        self.bot = bot
        self.codec = codec

    async def keyboard(
        self, user: str, choices: tuple[RenderedChoice, ...]
    ) -> InlineKeyboardMarkup | None:
        if not choices:
            return None
        commands = [c.payload for c in choices if not c.url]
        data = iter(await self.codec.encode(user, commands))
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(c.label, url=c.payload)
                    if c.url
                    else InlineKeyboardButton(c.label, callback_data=next(data))
                    for c in row
                ]
                for row in rows(choices)
            ]
        )

    async def _send_text(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> int:
        """sendMessage, keeping only the new message's id. `Bot.send_message` parses the whole
        Message Telegram answers (its keyboard too) into objects nothing here reads: about half
        a millisecond of CPU per reply, 8 % of an update (bench/telegram_throughput.py). It
        sends through `Bot._post`, the protected method every python-telegram-bot method sends
        through (default values, the rate limiter, errors raised as exceptions), unchanged
        through v20–22; every Telegram test sends through here."""
        data: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if markup is not None:
            data["reply_markup"] = markup
        sent = await self.bot._post("sendMessage", data)
        return int(sent["message_id"])

    async def send(self, chat_id: int, user: str, reply: Reply) -> int | None:
        """Send one reply to a chat; `user` is the Telegram user its buttons are for. Returns
        the id of its last text message (where a reply to it points), if it had text."""
        markup = await self.keyboard(user, reply.choices)
        parts = split_text(reply.text) if reply.text.strip() or markup else []
        sent_id: int | None = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            sent_id = await self._send_text(chat_id, part, markup if last else None)
        for attachment in reply.attachments:
            await self.bot.send_document(
                chat_id, InputFile(attachment.data, filename=attachment.filename)
            )
        if reply.invoice is not None and reply.invoice.subscription_period:
            invoice = reply.invoice  # a subscription: an invoice link, opened by a button
            link = await self.bot.create_invoice_link(
                title=invoice.title[: InvoiceLimit.MAX_TITLE_LENGTH],
                description=invoice.description[: InvoiceLimit.MAX_DESCRIPTION_LENGTH],
                payload=invoice.payload,
                provider_token="",
                currency=invoice.currency,
                prices=[LabeledPrice(invoice.label[:64], invoice.amount)],
                subscription_period=invoice.subscription_period,
            )
            button = InlineKeyboardButton(f"⭐ {invoice.amount} · {invoice.title}"[:64], url=link)
            await self.bot.send_message(
                chat_id, invoice.description, reply_markup=InlineKeyboardMarkup([[button]])
            )
        elif reply.invoice is not None:
            invoice = reply.invoice
            await self.bot.send_invoice(
                chat_id,
                title=invoice.title[: InvoiceLimit.MAX_TITLE_LENGTH],
                description=invoice.description[: InvoiceLimit.MAX_DESCRIPTION_LENGTH],
                payload=invoice.payload,
                provider_token="",
                currency=invoice.currency,
                prices=[LabeledPrice(invoice.label[:64], invoice.amount)],
            )
        return sent_id
