"""Fakes of the outside world (Telegram Bot API, Discord REST and gateway, Stripe) on 127.0.0.1,
driven by the real client libraries."""
