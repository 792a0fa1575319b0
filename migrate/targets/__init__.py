"""Exchange (and IMAP) targets, registered by URL scheme."""

from migrate.targets.base import (
    ExistingMessage,
    Failure,
    Outcome,
    Target,
    TargetCapabilities,
    TargetFolder,
    TargetOptions,
    UploadItem,
    UploadResult,
    open_target,
)

__all__ = [
    "ExistingMessage",
    "Failure",
    "Outcome",
    "Target",
    "TargetCapabilities",
    "TargetFolder",
    "TargetOptions",
    "UploadItem",
    "UploadResult",
    "open_target",
]
