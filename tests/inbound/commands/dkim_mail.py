"""DKIM-signed test mails: one RSA key per session (1024 bits: the smallest RFC 8301 allows,
fast to make) and one Ed25519 key (RFC 8463), their public halves as the TXT records a
domain would publish."""

from __future__ import annotations

import base64
from functools import cache

import dkim
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SELECTOR = "sel"
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id"]


@cache
def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def private_pem() -> bytes:
    return _key().private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())


def key_record() -> bytes:
    """v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>"""
    der = _key().public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def key_name(domain: str, selector: str = SELECTOR) -> str:
    return f"{selector}._domainkey.{domain}"


def dkim_sign(raw: bytes, domain: str, *, selector: str = SELECTOR,
              length: bool = False) -> bytes:
    """The mail with a DKIM-Signature on top, as the sending domain's server adds it."""
    header = dkim.sign(raw, selector.encode(), domain.encode(), private_pem(),
                       include_headers=SIGNED, length=length)
    return header + raw


ED_SELECTOR = "ed"


@cache
def _ed_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


def ed25519_record() -> bytes:
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(_ed_key().verify_key))


def ed25519_sign(raw: bytes, domain: str) -> bytes:
    header = dkim.sign(raw, ED_SELECTOR.encode(), domain.encode(),
                       base64.b64encode(bytes(_ed_key())),
                       signature_algorithm=b"ed25519-sha256", include_headers=SIGNED)
    return header + raw
