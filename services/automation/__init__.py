"""Automation: declarative rules that steer relays (surplus routing, tariffs, schedules)."""
