"""Mail stores a desktop client keeps on this computer: where a POP user's history really is.

Thunderbird: profiles.ini names each profile; a profile's Mail/<server>/ holds the mbox files of a POP account
or of Local Folders, and ImapMail/<server>/ the offline copies of an IMAP account (possibly incomplete: only
folders set for offline use are whole). Apple Mail: ~/Library/Mail/V<n>/<account>/*.mbox/ folders of .emlx
files. Outlook .pst files are offered only when a source for them is registered.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import UserError
from migrate.sources.base import registered_schemes

# Where Thunderbird keeps profiles.ini, relative to the home folder, per system and packaging.
_THUNDERBIRD_HOMES = (
    ".thunderbird",  # Linux
    "snap/thunderbird/common/.thunderbird",  # Ubuntu's snap
    ".var/app/org.mozilla.Thunderbird/.thunderbird",  # Flatpak
    ".mozilla-thunderbird",  # old Debian builds
    "Library/Thunderbird",  # macOS
    "AppData/Roaming/Thunderbird",  # Windows
)
_PREF = re.compile(r'user_pref\("mail\.server\.(server\d+)\.(hostname|type|userName|directory-rel)",\s*"(.*)"\);')
_NOT_MAIL = {".msf", ".dat", ".json", ".sqlite", ".html", ".js", ".ini", ".xml"}


@dataclass(frozen=True)
class LocalStore:
    kind: str  # thunderbird, thunderbird-imap, apple-mail, folder, pst
    url: str  # the source URL: mbox:/..., emlx:/..., maildir:/...
    label: str  # what the person recognises: the account and the profile
    path: Path
    note: str | None = None  # a caution, such as "offline copy: may be incomplete"


def _home(home: Path | None) -> Path:
    return home if home is not None else Path.home()


def _profiles(root: Path) -> list[tuple[str, Path]]:
    ini = root / "profiles.ini"
    if not ini.is_file():
        return []
    parser = configparser.RawConfigParser()
    try:
        parser.read(ini, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return []
    found = []
    for section in parser.sections():
        if not section.lower().startswith("profile") or not parser.has_option(section, "Path"):
            continue
        raw = parser.get(section, "Path")
        relative = parser.get(section, "IsRelative", fallback="1") == "1"
        path = (root / raw) if relative else Path(raw)
        if path.is_dir():
            found.append((parser.get(section, "Name", fallback=path.name), path))
    return found


def _accounts(profile: Path) -> dict[str, str]:
    """Which account each Mail/<dir> belongs to, from prefs.js: directory name -> 'POP user@host'."""
    prefs = profile / "prefs.js"
    servers: dict[str, dict[str, str]] = {}
    try:
        text = prefs.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    for server, key, value in _PREF.findall(text):
        servers.setdefault(server, {})[key] = value
    named = {}
    for values in servers.values():
        directory = values.get("directory-rel", "").replace("[ProfD]", "").strip("/")
        kind = {"pop3": "POP", "imap": "IMAP", "none": "Local Folders"}.get(values.get("type", ""), "")
        user = values.get("userName", "")
        host = values.get("hostname", "")
        if directory:
            named[directory] = f"{kind} {user}@{host}".strip() if user else (kind or host)
    return named


def _has_mbox(folder: Path) -> bool:
    for entry in folder.iterdir():
        if entry.is_file() and entry.suffix.lower() not in _NOT_MAIL and entry.stat().st_size > 0:
            return True
        if entry.is_dir() and entry.name.endswith(".sbd") and _has_mbox(entry):
            return True
    return False


def thunderbird_stores(home: Path | None = None) -> list[LocalStore]:
    stores = []
    for relative in _THUNDERBIRD_HOMES:
        root = _home(home) / relative
        for name, profile in _profiles(root):
            accounts = _accounts(profile)
            for area, kind in (("Mail", "thunderbird"), ("ImapMail", "thunderbird-imap")):
                base = profile / area
                if not base.is_dir():
                    continue
                for account in sorted(p for p in base.iterdir() if p.is_dir()):
                    if not _has_mbox(account):
                        continue
                    who = accounts.get(f"{area}/{account.name}", account.name)
                    note = "offline copy of an IMAP account: may be incomplete" if kind == "thunderbird-imap" else None
                    stores.append(LocalStore(kind, f"mbox:{account}", f"Thunderbird {name}: {who}", account, note))
    return stores


def apple_mail_stores(home: Path | None = None) -> list[LocalStore]:
    stores = []
    mail = _home(home) / "Library" / "Mail"
    if not mail.is_dir():
        return []
    for version in sorted((p for p in mail.glob("V*") if p.is_dir()), reverse=True):
        for account in sorted(p for p in version.iterdir() if p.is_dir() and p.name != "MailData"):
            if not any(account.rglob("*.emlx")):
                continue
            label = "On My Mac" if account.name == "Mailboxes" else account.name
            stores.append(LocalStore("apple-mail", f"emlx:{account}", f"Apple Mail {version.name}: {label}", account))
    return stores


def pst_files(home: Path | None = None) -> list[LocalStore]:
    """Outlook data files in the usual places, only when this version can read them."""
    if "pst" not in registered_schemes():
        return []
    places = [_home(home) / "Documents" / "Outlook Files", _home(home) / "AppData" / "Local" / "Microsoft" / "Outlook"]
    found = []
    for place in places:
        if place.is_dir():
            for pst in sorted(place.glob("*.pst")):
                found.append(LocalStore("pst", f"pst:{pst}", f"Outlook {pst.name}", pst))
    return found


def find_local_stores(home: Path | None = None) -> list[LocalStore]:
    return thunderbird_stores(home) + apple_mail_stores(home) + pst_files(home)


def store_in_folder(path: Path) -> LocalStore:
    """What kind of mail store a folder (or file) the person names is, as a source URL."""
    path = path.expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist", hint="give the folder where the mail files are")
    schemes = registered_schemes()
    if path.is_file():
        suffix = path.suffix.lower().lstrip(".")
        if suffix == "pst" and "pst" in schemes:
            return LocalStore("pst", f"pst:{path}", path.name, path)
        if suffix in ("eml", "emlx"):
            return LocalStore("folder", f"{suffix}:{path.parent}", path.parent.name, path.parent)
        return LocalStore("folder", f"mbox:{path}", path.name, path)
    if (path / "cur").is_dir() and (path / "new").is_dir():
        return LocalStore("folder", f"maildir:{path}", path.name, path)
    names = [p.name.lower() for p in path.rglob("*") if p.is_file()][:10000]
    if any(n.endswith(".emlx") for n in names):
        return LocalStore("folder", f"emlx:{path}", path.name, path)
    if any(n.endswith(".eml") for n in names):
        return LocalStore("folder", f"eml:{path}", path.name, path)
    if "pst" in schemes and any(n.endswith(".pst") for n in names):
        raise UserError(f"{path} holds .pst files", hint="give one .pst file, not the folder")
    if any(Path(n).suffix not in _NOT_MAIL for n in names):
        return LocalStore("folder", f"mbox:{path}", path.name, path)
    raise UserError(f"no mail files found in {path}",
                    hint="give a folder of mbox, Maildir, .eml or .emlx files")
