"""Where sign-ins are kept: msal-extensions' PersistedTokenCache in the user's config folder.

The cache goes to the system keyring when msal-extensions can reach one (libsecret, Keychain, DPAPI) and
to a plaintext file otherwise, as on most Linux servers; either way the file is 0600 in a 0700 folder,
checked after every write, and `auth status` says which storage is in use and why.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from msal_extensions import FilePersistence, PersistedTokenCache, build_encrypted_persistence
from msal_extensions.persistence import BasePersistence

from migrate.errors import UserError

log = logging.getLogger(__name__)

APP_DIR = "o365-migrate"
CACHE_FILE = "token-cache.json"
ENV_CONFIG_DIR = "O365M_CONFIG_DIR"
# "plaintext" skips the keyring: for tests, and for servers whose keyring would prompt.
ENV_CACHE_STORAGE = "O365M_TOKEN_CACHE"
DIR_MODE = 0o700
FILE_MODE = 0o600


def config_dir() -> Path:
    """$O365M_CONFIG_DIR, else $XDG_CONFIG_HOME/o365-migrate, else ~/.config/o365-migrate."""
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / APP_DIR


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    encrypted: bool
    storage: str  # where the tokens really are
    plaintext_reason: str | None
    file_mode: int | None  # None while nothing was written
    dir_mode: int


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tighten(path: Path, wanted: int) -> None:
    current = _mode(path)
    if current == wanted:
        return
    try:
        path.chmod(wanted)
    except OSError as exc:
        raise UserError(f"{path} has mode {current:04o} and cannot be set to {wanted:04o}: {exc.strerror}",
                        hint=f"run: chmod {wanted:o} {path}") from None
    log.warning("%s had mode %04o; set it to %04o", path, current, wanted)


class _PrivatePersistence(BasePersistence):
    """Delegates to msal-extensions' persistence and keeps the folder 0700 and the file 0600 after each save."""

    def __init__(self, inner: BasePersistence, path: Path) -> None:
        self._inner = inner
        self._path = path
        self.is_encrypted = inner.is_encrypted

    def save(self, content: str) -> None:
        self._inner.save(content)
        _tighten(self._path.parent, DIR_MODE)
        _tighten(self._path, FILE_MODE)

    def load(self) -> str:
        return str(self._inner.load())

    def time_last_modified(self) -> float:
        return float(self._inner.time_last_modified())

    def get_location(self) -> str:
        return str(self._inner.get_location())


def _choose_persistence(path: Path) -> tuple[BasePersistence, str | None]:
    """The encrypted persistence when msal-extensions can build one here, else the plaintext file (and why)."""
    if os.environ.get(ENV_CACHE_STORAGE, "").lower() == "plaintext":
        return FilePersistence(str(path)), f"{ENV_CACHE_STORAGE}=plaintext"
    try:
        encrypted = build_encrypted_persistence(str(path))
    except Exception as exc:  # msal-extensions raises ImportError, RuntimeError or its own errors
        first_line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        reason = f"no keyring available ({type(exc).__name__}: {first_line})" if first_line else "no keyring"
        log.debug("token cache falls back to a plaintext file: %s", reason)
        return FilePersistence(str(path)), reason
    if path.is_file() and path.stat().st_size > 0:
        # The keyring backends leave this file empty: content is sign-ins from before a keyring was reachable.
        return FilePersistence(str(path)), ("it holds sign-ins made before a keyring was available; "
                                            "`o365-migrate auth logout --all` and a new login move them")
    return encrypted, None


class TokenStore:
    """The one token cache of this user, shared by every tenant, app and transport."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / CACHE_FILE
        try:
            self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            _tighten(self.directory, DIR_MODE)
            if not self.path.exists():
                # Created here so that msal-extensions' writes (and the keyring's signal file) start as 0600.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        except OSError as exc:
            raise UserError(f"cannot create the token cache in {self.directory}: {exc.strerror}",
                            hint=f"check the folder, or set {ENV_CONFIG_DIR} to another one") from None
        persistence, self._plaintext_reason = _choose_persistence(self.path)
        self._encrypted = bool(persistence.is_encrypted)
        self._storage = type(persistence).__name__
        self.cache = PersistedTokenCache(_PrivatePersistence(persistence, self.path))

    def info(self) -> CacheInfo:
        if self._encrypted:
            storage = f"system keyring ({self._storage}); {self.path.name} only signals changes"
        else:
            storage = "plaintext file"
        return CacheInfo(
            path=self.path,
            encrypted=self._encrypted,
            storage=storage,
            plaintext_reason=self._plaintext_reason,
            file_mode=_mode(self.path) if self.path.exists() else None,
            dir_mode=_mode(self.directory),
        )


def shared_store() -> TokenStore:
    """One TokenStore per config folder and process, shared by every TokenProvider that is given none."""
    return _store_for(config_dir().resolve())


@cache
def _store_for(directory: Path) -> TokenStore:
    return TokenStore(directory)
