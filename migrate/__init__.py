"""o365-migrate: move mail, calendars and contacts into Microsoft 365, verified."""

__version__ = "0.1.0"
