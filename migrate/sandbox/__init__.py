"""A local stand-in for Exchange Online (Entra-like OAuth authority + EWS over HTTPS on loopback) for tests,
the demo and consultants' rehearsals. The real msal and exchangelib talk to it unmodified."""

from .config import BlockedEwsAnswer, SandboxConfig
from .faults import Fault, FaultKind
from .schema import SchemaViolation
from .server import RequestRecord, Sandbox, SandboxError, StoredItem, serve

__all__ = [
    "BlockedEwsAnswer",
    "Fault",
    "FaultKind",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SchemaViolation",
    "StoredItem",
    "serve",
]
