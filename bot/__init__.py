"""mentorbot: a mentoring marketplace that lives inside chat.

The package `bot` is the platform-neutral core; `bot.adapters` translate chat platforms into
core calls. The core never imports a chat platform's library.
"""
