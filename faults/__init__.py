"""`make faults`: kill real enerbox processes on loopback and measure how loads reach safety.

Nothing here asserts timing: every scenario measures and the table says whether each figure
is within its documented limit (a freshness limit or grace period + 1 s).
"""
