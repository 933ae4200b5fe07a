"""The simulated marketplace's fixed facts: its courses, its people's Telegram ids, the secrets
the bot processes and the fakes share, and the timings the bots are configured with."""

from __future__ import annotations

TOKEN = "123456:LOAD-test-token"
WEBHOOK_SECRET = "load-test-telegram-webhook-secret_0123"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
STRIPE_KEY = "sk_test_load"
STRIPE_WEBHOOK_SECRET = "whsec_" + "not-a-real-secret-" * 2  # built, not a literal key
STRIPE_PATH = "/stripe/webhook"
SESSIONS_INCLUDED = 4
# slug, title, topics, price (USD cents), price in Stars
COURSES = (
    ("python-load", "Python under load", ("python",), 4900, 250),
    ("data-load", "Data analysis under load", ("data", "python"), 7900, 400),
    ("git-load", "Git under load", ("git",), 2900, 150),
)
TOPICS = ("python", "data", "git")
DURATION_MINUTES = 30
LEAD_MINUTES = 150
REMINDER_OFFSETS = (120, 60)
LEARNER_BASE = 10_000_000
MENTOR_BASE = 20_000_000
SORRY = "something went wrong on our side"
# How long a notice may take to arrive: one claimed by a process that was then killed is sent
# by another when its lease (bot.core.outbox.LEASE, 60 s of real time) runs out, at the next sweep.
NOTICE_WAIT = 90.0
# ERROR log lines about an update or a payment: someone saw an apology or was not served.
USER_FACING = (
    "unexpected error handling a message",
    "telegram update failed",
    "pre-checkout check failed",
    "a successful Stars payment was not recorded",
    "stripe webhook failed",
    "stripe payment needs an admin",
)
