"""Personalised recommendations: the ranker, its signals from the database, what was shown."""
