"""Settings of one sandbox run. Defaults model Exchange Online where we know its numbers (DOMAIN.md "Limits")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .faults import Fault

MB = 1024 * 1024
EXCHANGE_ONLINE_IMPORT_BUDGET = 150 * MB  # per mailbox per 5 minutes (secondary source, see DOMAIN.md)


def default_schema_dir() -> Path | None:
    """The shared EWS schema beside the repository (../shared/ews-schema), if this checkout has it."""
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "ews-schema"
    return candidate if (candidate / "messages.xsd").is_file() else None


def default_graph_schema_dir() -> Path | None:
    """The shared Graph JSON Schema beside the repository (../shared/graph-schema), if this checkout has it."""
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "graph-schema"
    return candidate if (candidate / "graph-v1.0-outlook-subset.schema.json").is_file() else None


@dataclass(frozen=True)
class BlockedEwsAnswer:
    """What EWS answers when the tenant blocks EWS for the calling app.

    Public reports of Exchange Online's EWS retirement ("scream tests", EwsAllowedAppIDs) describe HTTP 403
    Forbidden, with an empty body in the one captured case (exchangelib issue #1324). The exact body and headers
    are unverified, so they are configurable here.
    """

    status: int = 403
    body: bytes = b""
    content_type: str = "text/html"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class SandboxConfig:
    tenant: str = "contoso.example"  # default tenant for add_app/add_mailbox; the authority is f"{url}/{tenant}"
    max_message_bytes: int = 35 * MB  # Exchange Online default MaxReceiveSize is 36 MB, MaxSendSize 35 MB
    # Exchange rebuilds MIME from its store format on every read; when true, GetItem does the same with
    # Python's email package, so callers cannot rely on byte equality (see DOMAIN.md "What Exchange gives back").
    rebuild_mime: bool = False
    validate_schema: bool = True
    # Also validate the sandbox's own answers (errors land in .schema_errors too): keeps the stand-in honest.
    validate_responses: bool = False
    schema_dir: Path | None = field(default_factory=default_schema_dir)
    graph_schema_dir: Path | None = field(default_factory=default_graph_schema_dir)
    busy_every_n_requests: int = 0
    busy_back_off_ms: int = 1500
    faults: list[Fault] = field(default_factory=list)
    throttle_enabled: bool = False
    throttle_bytes: int = EXCHANGE_ONLINE_IMPORT_BUDGET
    throttle_window_s: float = 300.0
    access_token_lifetime_s: int = 3600  # Entra ID's default for access tokens is 60-90 minutes
    refresh_token_lifetime_s: int = 90 * 24 * 3600
    device_code_lifetime_s: int = 900
    device_code_interval_s: int = 5
    find_count_limit: int = 1000  # EWSFindCountLimit
    blocked_answer: BlockedEwsAnswer = field(default_factory=BlockedEwsAnswer)
    request_log_limit: int = 10_000
