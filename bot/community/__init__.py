"""Learning together (issue 18): a private conversation per mentorship, relayed through the
bot (`relay`); a private Discord channel for a pair both on Discord (`spaces`); community
spaces per course whose access follows payment (`access`)."""
