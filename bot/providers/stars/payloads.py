"""What a Stars invoice carries back with its payment, written and read in one place."""

from __future__ import annotations


def payload(kind: str, row_id: int, stars: int) -> str:
    """What an invoice carries back with its payment: what it sells (`order`, `sub`), which one,
    and the price it showed."""
    return f"{kind}:{row_id}:{stars}"


def parse_payload(payload: str, kind: str) -> tuple[int, int] | None:
    """The id and price a `kind` payload names; None for any other payload."""
    found, _sep, rest = payload.partition(":")
    id_text, _sep, stars_text = rest.partition(":")
    if found != kind or not id_text.isdigit() or not stars_text.isdigit():
        return None
    return int(id_text), int(stars_text)
