"""Timezones as people type them: `Asia/Shanghai`, `asia/shanghai`, `Shanghai`, `new york`, `UTC+8`.

Stored zones are IANA names. A UTC offset in whole hours maps to its fixed-offset IANA zone
(`UTC+8` → `Etc/GMT-8`: POSIX inverts the sign), which never changes with daylight saving; an
offset IANA has no fixed zone for (`UTC+5:30`) is not guessed. Anything else unknown gets the
closest name as a suggestion.
"""

from __future__ import annotations

import difflib
import functools
import re
from zoneinfo import available_timezones

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


@functools.cache
def _zones() -> dict[str, str]:
    """Every IANA zone by its lower-case name, and by its city where that is unambiguous."""
    names = sorted(z for z in available_timezones() if not z.startswith(("posix/", "right/")))
    by_name = {z.lower(): z for z in names}
    for zone in names:
        if "/" in zone and not zone.startswith("Etc/"):
            by_name.setdefault(zone.rsplit("/", 1)[1].lower(), zone)
    return by_name


def find_zone(text: str) -> str | None:
    """The IANA zone `text` names, or None."""
    plain = " ".join(text.split())
    if not plain or len(plain) > 64:
        return None
    if plain.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    offset = _OFFSET.match(plain)
    if offset:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
        if minutes or hours > 14 or (sign == "-" and hours > 12):
            return None
        if hours == 0:
            return "UTC"
        return f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
    return _zones().get(plain.replace(" ", "_").lower())


def suggest_zone(text: str) -> str | None:
    """The known zone name closest to `text`, for a "did you mean" in a refusal."""
    key = " ".join(text.split())[:64].replace(" ", "_").lower()
    close = difflib.get_close_matches(key, list(_zones()), n=1, cutoff=0.75)
    return _zones()[close[0]] if close else None
