"""Accounts: one person across platforms (linking) and their data rights: export and erasure
(data_rights)."""
