"""The composition root: everything the bot runs on is built here, from config, and nowhere else."""

from __future__ import annotations

from bot.app import Marketplace
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.payments import DemoPayments, PaymentProvider
from storage.db import create_engine
from storage.migrate import upgrade


def payment_provider(config: Config) -> PaymentProvider | None:
    return DemoPayments() if config.payments.demo else None


async def build_marketplace(
    config: Config, clock: Clock | None = None, *, migrate: bool | None = None
) -> Marketplace:
    engine = create_engine(config.database_url(), pool_size=config.storage.pool_size)
    if config.storage.auto_migrate if migrate is None else migrate:
        await upgrade(engine)
    return Marketplace(config, engine, clock or SystemClock(), payment_provider(config))
