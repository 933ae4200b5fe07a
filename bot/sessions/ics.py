"""Calendar invites: an `.ics` file for a booked session, so it lands in people's calendars."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.replies import Attachment

PRODID = "-//mentorbot//sessions//EN"


def session_invite(
    session_id: int,
    start: datetime,
    duration_minutes: int,
    title: str,
    link: str,
    now: datetime,
    sequence: int = 0,
) -> Attachment:
    """One VEVENT in UTC; `sequence` grows on each reschedule so calendars update the event."""
    from icalendar import Calendar, Event  # on use: only a booking needs it

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = Event()
    event.add("uid", f"session-{session_id}@mentorbot")
    event.add("sequence", sequence)
    event.add("dtstamp", now)
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=duration_minutes))
    event.add("summary", title)
    event.add("location", link)
    event.add("url", link)
    event.add("description", f"{title}\n{link}")
    cal.add_component(event)
    return Attachment(f"session-{session_id}.ics", "text/calendar", cal.to_ical())
