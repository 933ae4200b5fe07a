"""The bot's Star transactions (getStarTransactions) as the plain facts reconciliation needs.

Telegram pages the list by `offset` (transactions skipped), at most 100 a call. The Bot API
documentation says "chronological order"; the Bot API server asks for TDLib's default order,
newest first. Paging stops at the end of the list, or at a page that runs from newer to older
and ends before the lookback (nothing older matters); a list that runs oldest first is read to
its end (at most `max_pages`). A refund is a transaction to the payer that carries the id of the
payment it gives back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from telegram import Bot, StarTransaction, TransactionPartnerUser
from telegram.constants import StarTransactionsLimit
from telegram.error import TelegramError

from bot.adapters.telegram.incoming import incoming
from bot.providers.stars.reconcile import LedgerUnavailable, StarHistory, StarPayment

log = logging.getLogger(__name__)

PAGE_SIZE = StarTransactionsLimit.MAX_LIMIT  # 100
MAX_PAGES = 100


class StarLedger:
    """A `bot.providers.stars.reconcile.StarLedger` over the Bot API."""

    def __init__(self, bot: Bot, page_size: int = PAGE_SIZE, max_pages: int = MAX_PAGES) -> None:
        self._bot = bot
        self._page_size = page_size
        self._max_pages = max_pages

    async def __call__(self, since: datetime) -> StarHistory:
        payments: dict[str, StarPayment] = {}
        refunded: set[str] = set()
        offset = 0
        for _page in range(self._max_pages):
            try:
                listed = await self._bot.get_star_transactions(offset=offset, limit=self._page_size)
            except TelegramError as exc:
                raise LedgerUnavailable(str(exc)) from exc
            page = listed.transactions
            for tx in page:
                if isinstance(tx.receiver, TransactionPartnerUser):
                    refunded.add(tx.id)  # whenever made: the refund of a payment in the window
                elif tx.date >= since and (payment := _payment(tx)) is not None:
                    payments[payment.charge_id] = payment
            if len(page) < self._page_size or _ends_before(page, since):
                break
            offset += len(page)
        else:
            log.warning(
                "stars reconciliation stopped after %s transactions; older ones go unchecked",
                offset + self._page_size,
            )
        return StarHistory(tuple(payments.values()), frozenset(refunded))


def _payment(tx: StarTransaction) -> StarPayment | None:
    """An invoice payment from a user; None for any other transaction."""
    source = tx.source
    if not isinstance(source, TransactionPartnerUser) or source.invoice_payload is None:
        return None
    return StarPayment(tx.id, incoming(source.user), source.invoice_payload, tx.amount, tx.date)


def _ends_before(page: Sequence[StarTransaction], since: datetime) -> bool:
    """The page runs from newer to older and its last transaction is older than `since`."""
    return page[0].date >= page[-1].date and page[-1].date < since
