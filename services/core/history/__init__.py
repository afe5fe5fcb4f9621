"""The history file format, one owner: the SQLite schema, table naming, read-back, tariffs.

The historian writes the file (``services.historian.history``, ``services.historian.ledger``)
and the api and ``enerbox history export`` read it; both sides take the format from here.
"""
