"""Changes to what the recommender's model reads, noted as rows of `model_changes`.

Asking "did anything the model reads change?" by counting completed sessions and lessons done
costs a scan of tables that only grow, on every suggestion. Instead every flush that adds,
removes or edits a watched column of a watched table adds one `ModelChange` row in the same
transaction (so a rolled-back change leaves none), and so does a bulk UPDATE or DELETE of a
watched table (an account merge moving rows to the kept user, data erasure). The reader
(`bot.recommending.signals.versions`) reads the newest id and the row count of the last
`WINDOW` ids: on PostgreSQL two transactions may commit out of id order, and the later
commit of the lower id still changes that count.

Edits the model does not read do not count: a booking changes an enrollment's credits left,
not who bought what, so it does not make every process rebuild its model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from storage.models import (
    Base,
    Course,
    Enrollment,
    Lesson,
    LessonDelivery,
    LessonRating,
    MentorSession,
    ModelChange,
    Order,
    Rating,
)

WINDOW = 1000

# Each watched table's columns that the model reads (empty: all of them).
WATCHED: dict[type[Base], tuple[str, ...]] = {
    Course: (),
    Lesson: ("course_id", "status"),
    Enrollment: ("user_id", "course_id", "order_id"),
    Order: ("paid_at", "sessions_included"),
    MentorSession: ("status", "enrollment_id", "learner_id"),
    LessonDelivery: ("done_at", "user_id", "lesson_id"),
    Rating: ("stars", "rater_id", "session_id"),
    LessonRating: ("stars", "user_id", "lesson_id"),
}
# A new row of these counts only once it is something the model reads (an order through the
# enrollment it pays for).
_NEW_COUNTS: dict[type[Base], Callable[[Any], bool]] = {
    Order: lambda _order: False,
    MentorSession: lambda session: session.status == "completed",
    LessonDelivery: lambda delivery: delivery.done_at is not None,
}
_TABLES = frozenset(str(cls.__tablename__) for cls in WATCHED)


class TrackingSession(Session):
    """The ORM session every unit of work uses (`storage.uow.make_uow_factory`)."""


def _edited(obj: Base, columns: tuple[str, ...]) -> bool:
    state = inspect(obj)
    if not columns:
        return any(attr.history.has_changes() for attr in state.attrs)
    return any(state.attrs[name].history.has_changes() for name in columns)


def _note(session: Session, tables: set[str]) -> None:
    """One row per flush (or bulk statement) that changed what the model reads: readers ask
    only whether the newest id or the recent count moved, so a second row costs nothing."""
    session.add(ModelChange(tables=",".join(sorted(tables))[:200]))


@event.listens_for(TrackingSession, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    tables: set[str] = set()
    for obj in session.new:
        cls = type(obj)
        if cls in WATCHED and _NEW_COUNTS.get(cls, lambda _o: True)(obj):
            tables.add(str(cls.__tablename__))
    for obj in session.deleted:
        if type(obj) in WATCHED:
            tables.add(str(type(obj).__tablename__))
    for obj in session.dirty:
        columns = WATCHED.get(type(obj))
        if columns is not None and _edited(obj, columns):
            tables.add(str(type(obj).__tablename__))
    if tables:
        _note(session, tables)


@event.listens_for(TrackingSession, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if isinstance(table, Table) and table.name in _TABLES:
        _note(state.session, {table.name})
