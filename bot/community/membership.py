"""The one rule for a place several spaces share: membership follows "entitled to ANY of them".

Several courses may point at the same platform place: one Telegram supergroup (each course
with its own forum topic, or none), or one Discord role. The platform knows only the place, so
a person is in it or not, whatever number of courses brought them there (Telegram topics are
not access-controlled: a member sees them all). Their access rows for that place, one per
course (`AccessGrant`, keyed by platform, place and platform id), are therefore decided
together, as one membership:

- while any row is desired GRANTED the person belongs in the place. If a row already holds
  them in (its actual state is GRANTED), the others are settled without calling the platform:
  no second invite link, and revoking one course does not remove them. Otherwise one grant
  (one invite link, one role) is made and every granted row shares it.
- when every row is desired REVOKED, one removal is made (ban and unban, the link revoked).
- a check asks the platform once per membership and compares its answer with the
  membership's desired state (`desired_of`), not with each row's own.

The sweep (`bot.community.access`) claims a membership's rows together, so one process decides
it; this module holds the decision only, on plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

GRANTED, REVOKED = "granted", "revoked"
GRANT, REVOKE, SHARED = "grant", "revoke", "shared"


class Row(Protocol):
    """What the rule reads of one access row."""

    @property
    def desired(self) -> str: ...

    @property
    def actual(self) -> str: ...

    @property
    def invite_link(self) -> str | None: ...


@dataclass(frozen=True)
class Plan:
    """What the platform must do for a membership: `GRANT` (one invite or role, revoking
    `link`, the one sent before), `REVOKE` (one removal, revoking `link`) or `SHARED` (no
    call: another row holds the person in; granted rows share `link`)."""

    action: str
    link: str | None = None


def desired_of(rows: Sequence[Row]) -> str:
    """The membership's desired state: GRANTED while any of its rows is."""
    return GRANTED if any(r.desired == GRANTED for r in rows) else REVOKED


def plan(rows: Sequence[Row]) -> Plan:
    """The decision for one membership's rows (ordered oldest first)."""
    links = [r.invite_link for r in rows if r.invite_link]
    latest = links[-1] if links else None
    if desired_of(rows) == REVOKED:
        return Plan(REVOKE, latest)
    holder = next((r for r in rows if r.actual == GRANTED), None)
    if holder is not None:
        return Plan(SHARED, holder.invite_link)
    return Plan(GRANT, latest)


def settled(row: Row, decided: Plan, link: str | None) -> tuple[str, str | None]:
    """A row's (actual state, invite link) once `decided` is done; `link` is the invite the
    platform made for a GRANT (None on platforms without links)."""
    if row.desired == REVOKED or decided.action == REVOKE:
        return REVOKED, None
    if decided.action == GRANT:
        return GRANTED, link
    return GRANTED, decided.link
