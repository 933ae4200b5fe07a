"""Adapters translate a chat platform into core calls and render the core's replies back.

An adapter: turns each incoming message or button press into `bot.core.users.Incoming`, calls
`Marketplace.handle`, renders the `Reply` list (text, choices, attachments) in the platform's
idiom, and registers a sender with `Marketplace.notifier` so notices reach its users. It holds
no business rules.
"""
