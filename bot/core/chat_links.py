"""Links that take a person from a web page back to their chat with the bot.

A web page (Stripe's landing pages) knows a user, not a platform connection, so each connected
adapter registers how to link one of its identities: Telegram the bot's `t.me/<username>`
(learnt from getMe), Discord the user's DM channel with the bot. A platform without a link
(the console) is simply absent, and the page says "go back to the chat" in words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# An identity's external id (or "" for no one in particular) -> its link, or None.
LinkFor = Callable[[str], str | None]


@dataclass(frozen=True)
class ChatLink:
    platform: str
    url: str


class ChatLinks:
    """Per platform, how to link an identity to its chat; adapters register when connected."""

    def __init__(self) -> None:
        self._by_platform: dict[str, LinkFor] = {}

    def register(self, platform: str, link_for: LinkFor) -> None:
        self._by_platform[platform] = link_for

    def unregister(self, platform: str) -> None:
        self._by_platform.pop(platform, None)

    def for_identities(self, identities: Iterable[tuple[str, str]]) -> list[ChatLink]:
        """Links for these (platform, external id) pairs, in their order, one per platform."""
        links: list[ChatLink] = []
        for platform, external_id in identities:
            link_for = self._by_platform.get(platform)
            url = link_for(external_id) if link_for is not None else None
            if url and all(link.platform != platform for link in links):
                links.append(ChatLink(platform, url))
        return links

    def for_anyone(self) -> list[ChatLink]:
        """Each connected platform's link that names no one (a page that knows no user)."""
        return self.for_identities((platform, "") for platform in sorted(self._by_platform))
