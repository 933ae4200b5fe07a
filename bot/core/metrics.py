"""Prometheus metrics, served at GET /metrics on the process's web server.

Module-level collectors on the default registry: one process, one set of counters, whatever
number of adapters feed it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INPUTS = Counter(
    "mentorbot_inputs_total",
    "Inputs through the front door (chat, stripe_webhook, stars_pre_checkout, stars_payment, "
    "stripe_reconcile, stars_reconcile, sweep), by kind and outcome (ok, refused, error...).",
    ["kind", "outcome"],
)
INPUT_SECONDS = Histogram(
    "mentorbot_input_seconds",
    "Time to handle one input through the front door, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPDATES = Counter(
    "mentorbot_updates_total",
    "Messages and button presses handled, by platform and outcome (ok, refused, error).",
    ["platform", "outcome"],
)
HANDLING_SECONDS = Histogram(
    "mentorbot_handling_seconds",
    "Time to handle one message or button press, by platform.",
    ["platform"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REMINDERS_SENT = Counter("mentorbot_reminders_sent_total", "Reminders written to the outbox.")
REMINDER_LATENESS = Histogram(
    "mentorbot_reminder_lateness_seconds",
    "How long after its due time a reminder was claimed.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
PAYMENTS = Counter(
    "mentorbot_payments_total",
    "Payments by provider and outcome (fulfilled, rejected, refunded).",
    ["provider", "outcome"],
)
ERRORS = Counter("mentorbot_errors_total", "Unexpected errors, by where they happened.", ["where"])
NOTICES_SENT = Counter(
    "mentorbot_notices_sent_total", "Outbox messages delivered, by platform.", ["platform"]
)
WEB_CONNECTIONS = Gauge("mentorbot_web_connections", "Connections open to the web server.")
WEB_SHED = Counter(
    "mentorbot_web_shed_total",
    "Clients the web server shed, by why: too_many_connections (answered 503 at once), "
    "slow_headers (closed at the header timeout) or slow_body (answered 408).",
    ["reason"],
)
