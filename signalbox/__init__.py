"""signalbox: a self-hosted system of action for B2C businesses."""

__version__ = "0.1.0"
