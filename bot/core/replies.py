"""What the core says back: plain text, choices and attachments addressed to users.

Adapters render these: choices become inline keyboards on Telegram, buttons on Discord and
numbered options in the console. A choice's payload is the command it stands for (`/accept 12`),
so pressing a button is exactly typing that command: every check the command makes applies to a
forged or stale payload too.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from bot.core.i18n import Localized, Msg, _, render_value, shown_instants


@dataclass(frozen=True)
class Choice:
    """A button. Its payload is a command sent back when pressed, or, with `url`, a link."""

    label: Msg | Localized | str
    payload: str
    url: bool = False


def write_to_admins() -> Choice:
    """The button on every reply that says the admins can help: `/support` asks for the
    message and relays it to them (bot/handlers/support.py)."""
    return Choice(_("Write to the admins"), "/support")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Invoice:
    """A request to pay inside the chat (Telegram Stars): the adapter shows a native invoice.

    `payload` comes back with the payment and names what is paid for; `amount` is in the
    currency's smallest unit (for Stars, whole stars).
    """

    title: Msg | Localized | str
    description: Msg | Localized | str
    label: Msg | Localized | str
    payload: str
    currency: str
    amount: int
    # Seconds between charges for a subscription (Telegram allows 2592000, 30 days): shown as
    # an invoice link (createInvoiceLink) rather than an invoice message.
    subscription_period: int | None = None


@dataclass(frozen=True)
class RenderedInvoice:
    title: str
    description: str
    label: str
    payload: str
    currency: str
    amount: int
    subscription_period: int | None = None


@dataclass(frozen=True)
class Say:
    """A message before it knows its reader's language."""

    msg: Msg
    choices: tuple[Choice, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    invoice: Invoice | None = None
    # A relayed message's id (bot.community.relay): a platform where people reply to a message
    # records where it landed, so a reply to it continues the conversation.
    relay: int | None = None


@dataclass(frozen=True)
class RenderedChoice:
    label: str
    payload: str
    url: bool = False


@dataclass(frozen=True)
class Reply:
    """A message rendered for one user, ready for an adapter."""

    user_id: int
    text: str
    choices: tuple[RenderedChoice, ...] = ()
    attachments: tuple[Attachment, ...] = field(default=(), compare=False)
    # Only in direct replies (an invoice is asked for, never sent as a notice).
    invoice: RenderedInvoice | None = field(default=None, compare=False)
    # The instants in `text` as rendered there, with their Unix times (`shown_instants`).
    instants: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    relay: int | None = field(default=None, compare=False)  # see `Say.relay`

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "text": self.text,
            "choices": [[c.label, c.payload, c.url] for c in self.choices],
            "attachments": [
                [a.filename, a.content_type, base64.b64encode(a.data).decode("ascii")]
                for a in self.attachments
            ],
            "instants": [list(i) for i in self.instants],
        }
        if self.relay is not None:
            body["relay"] = self.relay
        return body

    @classmethod
    def from_json(cls, user_id: int, body: dict[str, Any]) -> Reply:
        return cls(
            user_id=user_id,
            text=body["text"],
            choices=tuple(RenderedChoice(*choice) for choice in body["choices"]),
            attachments=tuple(
                Attachment(name, kind, base64.b64decode(data))
                for name, kind, data in body.get("attachments", [])
            ),
            instants=tuple((text, unix) for text, unix in body.get("instants", [])),
            relay=body.get("relay"),
        )


def render(user_id: int, say: Say, lang: str, tz: str) -> Reply:
    return Reply(
        user_id=user_id,
        text=say.msg.render(lang, tz),
        choices=tuple(
            RenderedChoice(
                render_value(c.label, lang, tz),
                c.payload,
                c.url,
            )
            for c in say.choices
        ),
        attachments=say.attachments,
        invoice=_render_invoice(say.invoice, lang, tz) if say.invoice else None,
        instants=shown_instants(say.msg, lang, tz),
        relay=say.relay,
    )


def _render_invoice(invoice: Invoice, lang: str, tz: str) -> RenderedInvoice:
    return RenderedInvoice(
        title=render_value(invoice.title, lang, tz),
        description=render_value(invoice.description, lang, tz),
        label=render_value(invoice.label, lang, tz),
        payload=invoice.payload,
        currency=invoice.currency,
        amount=invoice.amount,
        subscription_period=invoice.subscription_period,
    )
