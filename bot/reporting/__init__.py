"""Reporting: what the admin report reads from the database (records), the numbers computed from
it (model, satisfaction) and the files it is delivered as, a PNG chart and CSVs (files)."""
