"""The shared vocabulary every business area speaks: clock, errors, i18n, replies, states,
conversations, users and roles, buttons, the outbox (`tell`, `tell_admins`) and its notifier,
the web server, metrics and logs.

Nothing here imports a business area (mentoring, sessions, learning, accounts, reporting,
providers), a handler, an adapter or the marketplace object; tests/test_architecture.py keeps
it so. A module belongs here when two or more areas need it and it holds no marketplace rule.
"""
