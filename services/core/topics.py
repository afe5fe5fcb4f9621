"""Moved to ``services.core.contract.topics``; kept so older imports keep working."""

from services.core.contract.topics import Topics, check_prefix, discovery_topic, slug

__all__ = ["Topics", "check_prefix", "discovery_topic", "slug"]
