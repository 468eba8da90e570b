"""RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 §8.2) for a Google service-account JWT, in plain
Python: reading the key's PEM (PKCS#8 or PKCS#1) and one modular exponentiation, so canaryd needs no
cryptography library for the one signature Cloud Monitoring asks of it."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")  # DigestInfo prefix
_PEM = re.compile(r"-----BEGIN (RSA )?PRIVATE KEY-----(.+?)-----END (RSA )?PRIVATE KEY-----", re.S)


class RsaKeyError(ValueError):
    """The PEM is not an RSA private key this module reads."""


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int
    d: int = field(repr=False)


def _read(der: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, content, next position) of the DER element at ``pos``."""
    if pos + 2 > len(der):
        raise RsaKeyError("truncated DER")
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise RsaKeyError("bad DER length")
        length = int.from_bytes(der[pos:pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise RsaKeyError("truncated DER")
    return tag, der[pos:pos + length], pos + length


def _items(content: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(content):
        tag, value, pos = _read(content, pos)
        out.append((tag, value))
    return out


def _rsa_private_key(der: bytes) -> RsaKey:
    tag, seq, _ = _read(der, 0)
    items = _items(seq) if tag == 0x30 else []
    if len(items) < 4 or any(t != 0x02 for t, _ in items[:4]):
        raise RsaKeyError("not an RSAPrivateKey")
    n, e, d = (int.from_bytes(v, "big") for _, v in items[1:4])
    return RsaKey(n, e, d)


def load_pem(pem: str) -> RsaKey:
    m = _PEM.search(pem)
    if m is None:
        raise RsaKeyError("no PEM private key")
    try:
        der = base64.b64decode("".join(m.group(2).split()), validate=True)
    except ValueError:
        raise RsaKeyError("bad base64") from None
    if m.group(1):  # PKCS#1
        return _rsa_private_key(der)
    tag, seq, _ = _read(der, 0)  # PKCS#8: version, algorithm, OCTET STRING(RSAPrivateKey)
    items = _items(seq) if tag == 0x30 else []
    if len(items) < 3 or items[2][0] != 0x04 or b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01" not in items[1][1]:
        raise RsaKeyError("not a PKCS#8 RSA key")
    return _rsa_private_key(items[2][1])


def encoded_digest(message: bytes, size: int) -> int:
    """EMSA-PKCS1-v1_5 of ``message`` for a modulus of ``size`` bytes, as an integer."""
    info = _SHA256_INFO + hashlib.sha256(message).digest()
    if size < len(info) + 11:
        raise RsaKeyError("RSA key too small")
    return int.from_bytes(b"\x00\x01" + b"\xff" * (size - len(info) - 3) + b"\x00" + info, "big")


def sign(key: RsaKey, message: bytes) -> bytes:
    size = (key.n.bit_length() + 7) // 8
    return pow(encoded_digest(message, size), key.d, key.n).to_bytes(size, "big")


def verify(n: int, e: int, message: bytes, signature: bytes) -> bool:
    """For tests and fakes: does ``signature`` sign ``message`` with the key of modulus ``n``?"""
    size = (n.bit_length() + 7) // 8
    if len(signature) != size:
        return False
    return pow(int.from_bytes(signature, "big"), e, n) == encoded_digest(message, size)
