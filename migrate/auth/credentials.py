"""What an app-only sign-in proves itself with: a client secret (from $VAR or a file) or a certificate.

A secret is read when first needed and never kept in argv, a URL, a log line or an exception.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from migrate.errors import UsageError, UserError
from migrate.secrets import read_secret_file

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class ClientSecret:
    value: Callable[[], str] = field(repr=False)
    source: str  # "$VAR" or the file's path, for messages

    def __repr__(self) -> str:
        return f"ClientSecret(source={self.source!r})"


@dataclass(frozen=True)
class ClientCertificate:
    path: Path


ClientCredential = ClientSecret | ClientCertificate


@dataclass(frozen=True)
class LoadedCertificate:
    private_key_pem: str = field(repr=False)
    thumbprint: str  # SHA-1, hex, upper case: what the Entra portal shows under Certificates & secrets
    not_after: dt.datetime


def client_credential(secret_env: str | None, secret_file: Path | None,
                      certificate: Path | None) -> ClientCredential | None:
    """The credential the options name, or None for a delegated (device code) sign-in."""
    given = [name for name, value in (("--client-secret-env", secret_env), ("--client-secret-file", secret_file),
                                      ("--certificate", certificate)) if value]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} both given", hint="use one of them")
    if secret_env:
        return ClientSecret(_env_secret(secret_env), f"${secret_env}")
    if secret_file:
        return ClientSecret(_file_secret(secret_file), str(secret_file))
    if certificate:
        if not certificate.is_file():
            raise UserError(f"the certificate file {certificate} does not exist", hint="check the path")
        return ClientCertificate(certificate)
    return None


def _env_secret(name: str) -> Callable[[], str]:
    @cache
    def get() -> str:
        value = os.environ.get(name, "")
        if not value.strip():
            raise UserError(f"the environment variable {name} is not set or empty",
                            hint=f"export {name}=<the client secret's Value> first, or use --client-secret-file")
        return value.strip()

    return get


def _file_secret(path: Path) -> Callable[[], str]:
    @cache
    def get() -> str:
        value = read_secret_file(path).strip()
        if not value:
            raise UserError(f"the client secret file {path} is empty", hint="put the secret's Value in it")
        return value

    return get


def load_certificate(path: Path) -> LoadedCertificate:
    """The private key and the thumbprint of its certificate, both from one PEM file."""
    # cryptography takes a tenth of a second to load: only sign-in with a certificate needs it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the certificate file {path}: {exc.strerror}",
                        hint="check the path and its permissions") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise UsageError(f"the private key in {path} is protected by a passphrase",
                         hint=f"store it unencrypted with mode 600: openssl pkey -in {path} -out key.pem") from None
    except ValueError:
        raise UsageError(f"{path} holds no PEM private key",
                         hint="put the private key and the certificate in one PEM file: cat key.pem cert.pem") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"the key in {path} is not an RSA key", hint="Entra ID signs app sign-ins with RSA keys only")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    public = key.public_key().public_numbers()
    matching = [c for c in certificates if _public_numbers(c) == public]
    if not matching:
        raise UsageError(f"{path} holds no certificate for its private key",
                         hint="append the certificate you uploaded to the app registration: cat key.pem cert.pem")
    cert = matching[0]
    if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise UsageError(f"the certificate in {path} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
                         hint="create a new one and upload it to the app registration")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # SHA-1: what Entra matches x5t with
    return LoadedCertificate(private_key_pem=pem, thumbprint=thumbprint, not_after=cert.not_valid_after_utc)


def _public_numbers(cert: x509.Certificate) -> rsa.RSAPublicNumbers | None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = cert.public_key()
    return key.public_numbers() if isinstance(key, rsa.RSAPublicKey) else None
