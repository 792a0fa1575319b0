"""pytest support: fixtures that run a sandbox with schema validation on and fail the test on any violation.

Any test folder can use them, e.g. in its conftest.py:

    from migrate.sandbox.testing import make_sandbox_factory_fixture, make_sandbox_fixture
    sandbox = make_sandbox_fixture()
    sandbox_factory = make_sandbox_factory_fixture()

Schema directory: ../shared/ews-schema beside the repository. Where it is missing, tests skip, except in CI
(env CI set), where a missing schema must fail rather than silently skip.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .config import SandboxConfig, default_schema_dir
from .server import Sandbox

FactoryFn = Callable[..., Sandbox]


def require_schema_dir() -> Path:
    """The EWS schema directory, or skip (fail under CI) when this checkout has none."""
    found = default_schema_dir()
    if found is not None:
        return found
    message = "EWS schema not found (expected ../shared/ews-schema beside the repository)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(message)
    pytest.skip(message)


def strict_config(**overrides: Any) -> SandboxConfig:
    """A config for tests: schema validation of requests and answers on, everything else as given."""
    config = SandboxConfig(schema_dir=require_schema_dir(), validate_schema=True, validate_responses=True)
    return dataclasses.replace(config, **overrides)


def check_schema_errors(sandbox: Sandbox) -> None:
    errors = sandbox.schema_errors
    if errors:
        listed = "\n".join(f"  {e}" for e in errors[:20])
        pytest.fail(f"sandbox saw {len(errors)} EWS schema violation(s):\n{listed}", pytrace=False)


def make_sandbox_fixture(scope: str = "function", **config: Any) -> Any:
    """A fixture yielding one started sandbox (free loopback port, its own state dir)."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
        sb = Sandbox(tmp_path_factory.mktemp("sandbox"), config=strict_config(**config)).start()
        try:
            yield sb
        finally:
            sb.stop()
        check_schema_errors(sb)

    return sandbox


def make_sandbox_factory_fixture(scope: str = "function") -> Any:
    """A fixture yielding `factory(state_dir=None, port=0, **config) -> started Sandbox`; every sandbox made is
    stopped and checked for schema violations at teardown (also one restarted on the same state dir)."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FactoryFn]:
        made: list[Sandbox] = []

        def factory(state_dir: Path | None = None, port: int = 0, **config: Any) -> Sandbox:
            sb = Sandbox(state_dir or tmp_path_factory.mktemp("sandbox"), port=port, config=strict_config(**config))
            made.append(sb.start())
            return sb

        try:
            yield factory
        finally:
            for sb in made:
                sb.stop()
        for sb in made:
            check_schema_errors(sb)

    return sandbox_factory
