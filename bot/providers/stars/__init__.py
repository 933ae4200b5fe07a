"""Telegram Stars: the provider, the pre-checkout answer and the payment record (payment), and
reconciliation from the bot's Star transactions after a lost update (reconcile)."""
