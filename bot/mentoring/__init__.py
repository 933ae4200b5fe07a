"""Mentoring: offering a request to mentors round after round (offers), planning many requests
at once (cohort), and what a shared mentors channel shows about a request (announcements).
Scoring itself is pure and lives in `bot/matching.py`."""
