"""The database: SQLAlchemy 2 (async) models, engine set-up, migrations and the unit of work."""
