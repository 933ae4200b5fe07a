"""What a shared mentors channel shows about a request: open with Accept / Decline, or taken.

An adapter that mirrors request offers to a channel (Discord's mentors channel) shows this
instead of a mentor's own notice, which says why *that* mentor was picked. It renders it again
after each Accept or Decline pressed there, so the channel shows the request's current state as
the core decided it: the first accept wins (`/accept` locks the request), and the message then
names who took it. Pressing a button in the channel is typing its command, with every check.
"""

from __future__ import annotations

from bot.core.errors import STATUS_NAMES
from bot.core.i18n import When, _
from bot.core.replies import Choice, Say
from bot.learning.courses import course_title
from bot.mentoring.offers import LEVEL_NAMES, times_text
from storage.models import Course, Enrollment, MentorProfile, MentorshipRequest, User
from storage.uow import UnitOfWork


async def request_announcement(uow: UnitOfWork, request_id: int) -> Say | None:
    """The channel message for request `request_id` as it stands now; None if there is none."""
    request = await uow.get(MentorshipRequest, request_id)
    if request is None:
        return None
    learner = await uow.get(User, request.learner_id)
    enrollment = await uow.get(Enrollment, request.enrollment_id)
    course = await uow.get(Course, enrollment.course_id) if enrollment else None
    if learner is None or course is None:
        return None
    course_name = course_title(course)
    if request.status == "offered":
        return Say(
            _(
                "Mentorship request #{id} from {learner} for {course}.\n"
                "Goals: {goals}\nLevel: {level} · prefers {times}\n"
                "Open until {until} to the mentors it was offered to; the first to accept "
                "takes it.",
                id=request.id,
                learner=learner.display_name,
                course=course_name,
                goals=request.goals,
                level=LEVEL_NAMES[request.level],
                times=times_text(request.preferred_times),
                until=When(request.offer_expires_at) if request.offer_expires_at else "—",
            ),
            (
                Choice(_("Accept"), f"/accept {request.id}"),
                Choice(_("Decline"), f"/decline {request.id}"),
            ),
        )
    if request.status == "accepted" and request.mentor_id is not None:
        profile = await uow.get(MentorProfile, request.mentor_id)
        mentor = await uow.get(User, profile.user_id) if profile else None
        return Say(
            _(
                "Mentorship request #{id} from {learner} for {course} was taken by {mentor}.",
                id=request.id,
                learner=learner.display_name,
                course=course_name,
                mentor=mentor.display_name if mentor else "—",
            )
        )
    return Say(
        _(
            "Mentorship request #{id} from {learner} for {course} is {status}.",
            id=request.id,
            learner=learner.display_name,
            course=course_name,
            status=STATUS_NAMES.get(request.status, request.status),
        )
    )
