"""Client credentials: where secrets come from, and what a certificate PEM must hold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from migrate.auth import ClientCertificate, ClientSecret, client_credential
from migrate.auth.credentials import load_certificate
from migrate.errors import UsageError, UserError


def _cert(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, days: int = 30) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365-migrate")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=2))
            .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
         encryption: serialization.KeySerializationEncryption | None = None) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption or serialization.NoEncryption())


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_secret_from_env_is_read_when_needed_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    credential = client_credential("O365M_TEST_SECRET", None, None)
    assert isinstance(credential, ClientSecret)
    monkeypatch.setenv("O365M_TEST_SECRET", "  the-value \n")
    assert credential.value() == "the-value"
    assert "the-value" not in repr(credential) and credential.source == "$O365M_TEST_SECRET"


def test_missing_or_empty_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("O365M_TEST_SECRET", raising=False)
    with pytest.raises(UserError, match="O365M_TEST_SECRET is not set"):
        client_credential("O365M_TEST_SECRET", None, None).value()  # type: ignore[union-attr]
    empty = tmp_path / "secret"
    empty.write_text("\n")
    with pytest.raises(UserError, match="is empty"):
        client_credential(None, empty, None).value()  # type: ignore[union-attr]
    with pytest.raises(UserError, match="does not exist"):
        client_credential(None, None, tmp_path / "missing.pem")
    assert client_credential(None, None, None) is None


def test_certificate_thumbprint(tmp_path: Path) -> None:
    cert = _cert(RSA_KEY)
    path = tmp_path / "app.pem"
    path.write_bytes(_pem(RSA_KEY) + cert.public_bytes(serialization.Encoding.PEM))
    assert isinstance(client_credential(None, None, path), ClientCertificate)
    loaded = load_certificate(path)
    assert loaded.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert "PRIVATE KEY" not in repr(loaded)


@pytest.mark.parametrize(("content", "message"), [
    (lambda: _pem(RSA_KEY, serialization.BestAvailableEncryption(b"pw")) + _cert(RSA_KEY).public_bytes(
        serialization.Encoding.PEM), "protected by a passphrase"),
    (lambda: _cert(RSA_KEY).public_bytes(serialization.Encoding.PEM), "holds no PEM private key"),
    (lambda: _pem(RSA_KEY), "holds no certificate for its private key"),
    (lambda: _pem(RSA_KEY) + _cert(rsa.generate_private_key(public_exponent=65537, key_size=2048)).public_bytes(
        serialization.Encoding.PEM), "holds no certificate for its private key"),
    (lambda: _pem(RSA_KEY) + _cert(RSA_KEY, days=-1).public_bytes(serialization.Encoding.PEM), "expired on"),
    (lambda: _pem(ec.generate_private_key(ec.SECP256R1())), "not an RSA key"),
])
def test_unusable_certificate_files(tmp_path: Path, content: Callable[[], bytes], message: str) -> None:
    path = tmp_path / "app.pem"
    path.write_bytes(content())
    with pytest.raises(UsageError, match=message):
        load_certificate(path)
