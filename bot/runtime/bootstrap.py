"""The composition root: everything the bot runs on is built here, from config, and nowhere else."""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Marketplace
from bot.config import Config
from bot.core.clock import Clock, ScaledClock, SystemClock
from bot.payments import DemoPayments, PaymentProvider
from bot.providers.stars.payment import StarsPayments
from storage.db import autovacuum_off, create_engine

log = logging.getLogger(__name__)


def payment_providers(config: Config, clock: Clock | None = None) -> list[PaymentProvider]:
    providers: list[PaymentProvider] = []
    if config.payments.demo:
        providers.append(DemoPayments())
    if config.stripe.secret_key:
        from bot.providers.stripe.checkout import StripePayments  # only loaded when configured

        providers.append(StripePayments(config.stripe, clock or SystemClock()))
    if config.telegram.token and config.telegram.stars:
        providers.append(StarsPayments())
    return providers


async def build_marketplace(
    config: Config, clock: Clock | None = None, *, migrate: bool | None = None
) -> Marketplace:
    engine = create_engine(config.database_url(), pool_size=config.storage.pool_size)
    if config.storage.auto_migrate if migrate is None else migrate:
        from storage.migrate import upgrade  # Alembic loads slowly; a bot that migrates needs it

        await upgrade(engine)
    if clock is None:
        start = config.clock.start_instant()
        clock = (
            ScaledClock(config.clock.speed, start, wall_origin=start)
            if config.clock.speed != 1
            else SystemClock()
        )
    app = Marketplace(config, engine, clock, payment_providers(config, clock))
    await app.settle_admins()
    return app


async def warn_about_database(engine: AsyncEngine) -> None:
    """Said once when the bot starts serving (not by every CLI command): a server setting
    that makes a long-running marketplace slow down as its tables grow."""
    if await autovacuum_off(engine):
        log.warning(
            "PostgreSQL runs with autovacuum off: dead rows pile up and queries lose their "
            "statistics, so delivery and sweeps slow down as tables grow. Turn it on (the "
            "default), or run VACUUM ANALYZE regularly."
        )


class Service(Protocol):
    """Something `mentorbot run` starts and stops: a platform adapter, the web server."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def configured_services(config: Config, app: Marketplace) -> list[Service]:
    """The adapters and servers that config enables; empty means: use the console chat.

    Each platform adds itself here when its section is configured (token present), so that
    `mentorbot run` needs no flags.
    """
    from bot.core.web import WebServer  # aiohttp: only when something is served

    services: list[Service] = []
    web = WebServer.from_config(config.web)
    if config.telegram.token:
        from bot.adapters.telegram import TelegramService  # only loaded when configured

        services.append(TelegramService(config, app, web))
    if config.discord.token:
        from bot.adapters.discord import DiscordService  # only loaded when configured

        services.append(DiscordService(app, web=web))
    stripe = next((p for p in app.payments if p.name == "stripe"), None)
    if stripe is not None:
        from bot.providers.stripe.service import StripeService

        services.append(StripeService(app, stripe, web))  # type: ignore[arg-type]
    if services:
        # Listening, with every route added, before webhooks are set; also serves /healthz,
        # /readyz and /metrics, so it runs whenever anything does.
        web.add_readiness_check("database", app.database_reachable)
        services.insert(0, web)
    return services
