"""The history file format, one owner: the SQLite schema, table naming, read-back, tariffs.

The historian writes the file (its ``history`` and ``ledger`` modules)
and the api and ``enerbox history export`` read it; both sides take the format from here.
"""
