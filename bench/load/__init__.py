"""Load and fault test: several `mentorbot run` processes on one PostgreSQL, checked for loss
and doubling. Prints figures and invariant checks; exits 1 if an invariant fails.

    .venv/bin/python -m bench.load [--learners 1000] [--mentors 100] [--processes 3]
        [--speed 300] [--max-connections 100] [--no-flood-control] [--postgres URL]

What runs:

- A PostgreSQL database `mentorbot_load_<pid>` (created, then dropped at the end) on the server
  of `--postgres` (default `$MENTORBOT_TEST_POSTGRES_URL`, else the local `test` database's
  URL); the schema comes from `mentorbot migrate`; three courses (Stars and card prices) are
  added by an admin's `/admin course add`, and `--mentors` approved mentors with Telegram
  identities, differing in topics, ratings and capacity and available around the clock, are
  made by the core's own `resolve_user` and `make_mentor` (seed.py).
- In this process: a fake Telegram Bot API (tests/fakes/fake_telegram.py) that every bot process
  calls, a fake Stripe API (tests/fakes/fake_stripe.py), a load balancer and the simulated people.
- `--processes` OS processes `python -m bot --config FILE run`: Telegram in webhook mode,
  Stripe, each on its own port, all with `[clock] speed` and one shared `[clock] start`, so
  sessions, reminders and their follow-ups happen within the run.

The load balancer spreads webhook posts round-robin over the processes that are up, at most
`--max-connections` at once (Telegram's webhook max_connections); a refused connection, a reset,
a timeout or a 5xx sends the same update to the next one (Telegram's redelivery, same update_id).
Besides that, `--dup-rate` of all updates and half of the Stars payments are delivered twice on
purpose, to two processes, at once or one after the other; every Stripe event is delivered
twice.

Each learner: /start, /buy, pays (Stars: invoice, pre-checkout, successful payment; or
`--stripe-share` of them by card: Checkout Session paid at the fake, signed
`checkout.session.completed` webhooks), "Find a mentor", the three questions, waits until a
mentor accepts, books a slot (again when someone else took it), answers the follow-up after
the session and rates it with a comment. Each mentor answers offers (Accept, some Decline),
confirms sessions took place and rates the learner. Everyone waits `--think` seconds (mean)
before acting; the bots' own flood control keeps each chat near Telegram's 1 message/s
(`--no-flood-control` sets `[telegram] flood_control = false` in the bots' config). People
recognise messages by the commands their buttons carry (people.py), not by their wording.

Phases: (1) the first half of the learners buy and get a mentor through ONE process (the others
are not started yet); (2) the other half through all processes; their updates/s are printed
side by side, measured until 90 % of the phase's learners were through, with the CPU each
update cost. (3) Everyone books and meets; when a third has booked, the last process is killed
with SIGKILL and started again, and when two thirds have, the first is restarted gracefully
(SIGTERM, then started again, as a deployment does). Then the invariants are checked and the
processes are stopped with SIGTERM:

- every learner finished the journey, every mentor's answer got its reply, and the kill -9 and
  the SIGTERM restart happened (the latter exiting 0, within 40 s);
- every payment fulfilled exactly once (one paid order, one enrollment, one confirmation);
- no double booking (no overlapping sessions of a mentor or a learner; credits add up);
- every outbox row (notices, reminders, follow-ups, replies kept for later) reached its chat
  exactly once. The one exception is delivery's at-least-once across a crash: rows the killed
  process had sent but not yet recorded go out again when their lease runs out. The fake Bot
  API knows which process incarnation made each call (each calls it under its own
  `/via/<name>-<n>/` prefix), so only copies the killed incarnation itself sent count as that;
- every due reminder sent exactly once (claimed once, none skipped as too late, as many
  messages as claimed rows, those re-sent copies aside);
- every update answered; no ERROR logged (none about an update or a payment, none in the
  background, no apology sent to anyone).

The run is bounded: every wait has a timeout and `--timeout` caps the whole run. Measured on a
2-core machine that was running other tests alongside: `--learners 100 --mentors 10
--processes 3` about 4 minutes (230 and 257 s; most of it phase 3, which waits for the
simulated sessions); tests/test_load_small.py (16 learners, 6 mentors, 2 processes, ×600)
50-85 s. The default 1,000 learners and 100 mentors with `--no-flood-control`, on the same
machine with nothing else running: about 5 minutes (303 s), every invariant passed.

The package, one seam a module: world.py (the fixed facts), processes.py (bot processes, the
load balancer, the database, CPU), seed.py, chat.py (the fake Bot API per chat; reading
buttons), people.py (learners and mentors), checks.py (the invariants), report.py (settings,
figures, the printed report), run.py (the phases), __main__.py (the command line).
"""

from __future__ import annotations

from bench.load.report import Report, Settings
from bench.load.run import run_load

__all__ = ["Report", "Settings", "run_load"]
