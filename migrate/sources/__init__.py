"""Read-only mailbox sources, registered by URL scheme."""

from migrate.sources.base import Capabilities, Source, SourceOptions, open_source, registered_schemes

__all__ = ["Capabilities", "Source", "SourceOptions", "open_source", "registered_schemes"]
