"""The front door: every input, whatever brought it, goes through `FrontDoor.dispatch`.

A chat message or button press, a Stripe webhook, a Telegram Stars pre-checkout or payment, a
reconciliation pass, a timer's sweep: each is one call of `dispatch(kind, work)`, which counts
it in flight (so a graceful shutdown waits for it), measures it by kind and outcome, and gives
every failure the same path: logged once with its traceback and counted as an error, then
answered as the caller's transport needs (`on_error`: an apology, a 500 for a retry).

Entry points depend on `Ports`, the few things an input needs (config, clock, transactions,
the notifier, the payment providers and this door), not on the whole `Marketplace`, so the
providers sit below `bot.app` and nothing imports in a circle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, TypeVar

from bot.core.i18n import _
from bot.core.in_flight import InFlight
from bot.core.metrics import ERRORS, INPUT_SECONDS, INPUTS

if TYPE_CHECKING:
    from bot.config import Config
    from bot.core.chat_links import ChatLinks
    from bot.core.clock import Clock
    from bot.core.notifier import Notifier
    from bot.payments import PaymentProvider
    from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")

LOGGED = "_mentorbot_logged"  # set on an exception once `FrontDoor.failed` has logged it


def already_logged(error: BaseException | None) -> bool:
    """Whether the front door logged this exception already: an adapter's own error handler,
    which sees it again on its way to the user's apology, then does not log it twice."""
    return bool(getattr(error, LOGGED, False))


# What the sender of a failed input reads (the core's reply, an adapter's own failure).
APOLOGY = _("Sorry, something went wrong on our side. Nothing was changed; please try again.")

# What the log says when one fails, by where: operators (and bench/load.py) search for these.
FAILURES = {
    "handle": "unexpected error handling a message",
    "after_commit": "unexpected error after a message's transaction committed",
    "chat": "unexpected error handling a message",
    "stripe_webhook": "stripe webhook failed; Stripe will retry it",
    "stripe_reconcile": "stripe reconciliation failed; the next pass retries",
    "stars_pre_checkout": "pre-checkout check failed; refusing the checkout",
    "stars_payment": "a successful Stars payment was not recorded",
    "stars_reconcile": "stars reconciliation failed; the next pass retries",
    "sweep": "sweep failed; the next one retries",
    "seat_refunds": "refunding unused workshop seats failed; the next sweep retries",
    "landing_page": "a payment landing page failed; the visitor was asked to reload",
}


def _ok(_result: object) -> str:
    return "ok"


class FrontDoor:
    """Metrics, in-flight tracking and the error path shared by every kind of input."""

    def __init__(self) -> None:
        self._in_flight = InFlight()
        self._by_kind: dict[str, InFlight] = {}

    async def dispatch(
        self,
        kind: str,
        work: Callable[[], Awaitable[T]],
        *,
        outcome: Callable[[T], str] = _ok,
        on_error: Callable[[], T] | None = None,
        context: Mapping[str, object] | None = None,
    ) -> T:
        """Run one input. `outcome` names what happened (ok, refused, duplicate...) for the
        metrics. An exception is logged and counted here; then `on_error()` is the answer, or
        without it the exception goes on to the caller's own edge (e.g. a chat adapter's
        apology)."""
        started = time.perf_counter()
        label = "error"
        try:
            with self._tracking(kind):
                result = await work()
            label = outcome(result)
            return result
        except asyncio.CancelledError:
            label = "cancelled"
            raise
        except Exception:
            self.failed(kind, context=context)
            if on_error is None:
                raise
            return on_error()
        finally:
            INPUTS.labels(kind, label).inc()
            INPUT_SECONDS.labels(kind).observe(time.perf_counter() - started)

    def failed(
        self, kind: str, where: str | None = None, context: Mapping[str, object] | None = None
    ) -> None:
        """The one error path: log the exception being handled, with its traceback, and count
        it under `where` (default: the kind of input)."""
        where = where or kind
        log.exception(
            FAILURES.get(where, "unexpected error handling an input"),
            extra={"kind": kind, **(context or {})},
        )
        ERRORS.labels(where).inc()
        error = sys.exc_info()[1]
        if error is not None:
            with contextlib.suppress(AttributeError):  # a type with __slots__, no __dict__
                setattr(error, LOGGED, True)

    @contextmanager
    def _tracking(self, kind: str) -> Iterator[None]:
        by_kind = self._by_kind.get(kind)
        if by_kind is None:
            by_kind = self._by_kind[kind] = InFlight()
        with self._in_flight.tracking(), by_kind.tracking():
            yield

    async def drain(self, within: float, kind: str | None = None) -> bool:
        """Wait until no input (of `kind`, if given) is in flight; False on timeout."""
        waiting = self._in_flight if kind is None else self._by_kind.get(kind)
        return True if waiting is None else await waiting.drain(within)


class Ports(Protocol):
    """What an entry point may use; `bot.app.Marketplace` is one, a test may build another."""

    @property
    def config(self) -> Config: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def payments(self) -> tuple[PaymentProvider, ...]: ...

    @property
    def front(self) -> FrontDoor: ...

    @property
    def chat_links(self) -> ChatLinks: ...

    def new_uow(self) -> UnitOfWork: ...
