"""enerbox: the open-source home energy box."""

__version__ = "0.1.0"
