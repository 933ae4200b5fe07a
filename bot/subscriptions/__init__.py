"""Subscriptions: monthly plans, paid period by period (demo, Stripe, Telegram Stars).

How a plan's sessions reach booking: when a subscription first gets access (a trial starts
or its first period is paid), an anchor order (provider `subscription`, status paid, the
plan's price and sessions per period) and an ordinary enrollment on the plan's course are
created for it. Every paid period then posts its money (`paid:period:N`, Kind.PERIOD_PAID,
on the anchor order) and its credits (`credits:period:N`, Kind.PERIOD_CREDITS, on that
enrollment), so `/mentor`, `/book`, cancellations, earnings (price ÷ sessions per period,
less the platform fee) and `/progress` work as for a bought course, unchanged.

- `plans`: a plan's name, price, courses and lookup.
- `coverage`: the other courses a plan covers: an enrollment without credits in each while the
  subscription has access (lessons, community spaces), the sessions staying on the primary one.
- `lifecycle`: the rules every provider calls: start, a period paid, a renewal failed,
  cancel at period end / resume, end (lapsed or cancelled).
- `refunds`: one paid period refunded (an admin's `/admin refund ORDER period=N`, Stripe's
  report of an invoice's refund), and the admin's policy check before it.
- `sweep`: what the clock drives: demo renewals, grace and Stars expiry lapses, periods that
  end after a cancel, renewal reminders and trial notices.
"""
