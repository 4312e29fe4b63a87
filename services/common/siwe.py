"""Sign-In-With-Ethereum (EIP-4361) messages that link a wallet to a GitHub login.

frontend builds the message, the wallet signs it with `personal_sign` (EIP-191),
frontend verifies it and identity verifies it again from the event. The message
follows the EIP-4361 ABNF in the kdemo profile: the statement is required and
names the login, `Expiration Time` is required, and the optional `Not Before`,
`Request ID` and `Resources` fields are not used (a message carrying them is
refused rather than half understood).

Nonces: EIP-4361 wants at least eight alphanumeric characters, so a nonce here
is not a JWT (its dots and dashes are not allowed) but a compact token with the
same meaning, written in lower-case base32 without padding::

    version (1 byte, 1) | expiry (8 bytes, unix seconds, big-endian)
    | random (12 bytes) | HMAC-SHA256(secret, "kdemo-link-nonce" | first 21 bytes)[:16]

The HMAC's label plays the part of a JWT audience ("link"): nothing else is
signed with that label, so a nonce is never mistaken for another token. frontend
verifies it without a database; identity makes each nonce single-use.

A link code is derived from its nonce (`link_code_for`, an HMAC under the same
secret with its own label): a signed message posted twice maps to one code, so
the second `identity.link_requested` is a JetStream duplicate and frontend can
refuse the replay without a database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address

from ._eth import Account, encode_defunct
from .timefmt import rfc3339

__all__ = [
    "LINK_CODE_LENGTH",
    "SiweError",
    "SiweMessage",
    "build_link_message",
    "issue_nonce",
    "link_code_for",
    "link_statement",
    "new_link_code",
    "parse_message",
    "validate_github_login",
    "verify_link_message",
    "verify_nonce",
]

LINK_CODE_LENGTH: Final = 28
"""26^28 is about 2^131: a code cannot be guessed, and has no digit to read as an amount."""
CLOCK_SKEW_S: Final = 60
"""How far in the future an `Issued At` may lie, for a browser clock slightly ahead."""

_HEADER_SUFFIX: Final = " wants you to sign in with your Ethereum account:"
_STATEMENT = re.compile(r"Link this wallet to the GitHub account (?P<login>\S+) on kdemo")
_LOGIN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
# RFC 3986 authority without userinfo: a host name, IPv4 or [IPv6], and an optional port
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_CHAIN_ID = re.compile(r"[1-9][0-9]*")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_NONCE_LABEL: Final = b"kdemo-link-nonce"
_CODE_LABEL: Final = b"kdemo-link-code"
_NONCE_VERSION: Final = 1
_NONCE_LAYOUT: Final = struct.Struct(">BQ12s")
_NONCE_MAC_BYTES: Final = 16
_NONCE_CHARS: Final = -(-8 * (_NONCE_LAYOUT.size + _NONCE_MAC_BYTES) // 5)  # 37 bytes -> 60
_NONCE_TEXT = re.compile(rf"[a-z2-7]{{{_NONCE_CHARS}}}")


class SiweError(ValueError):
    """A link message or nonce was refused.

    `reason` is a stable code (for `identity.link_refused` and HTTP answers);
    the text names the field, what is wrong and how to fix it.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class SiweMessage:
    """A parsed link message; `login` is the GitHub login its statement names."""

    domain: str
    address: str
    statement: str
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expires_at: datetime
    login: str


def validate_github_login(login: str) -> str:
    """Return `login` if GitHub could have issued it, else raise `SiweError("bad_login")`."""
    if not isinstance(login, str) or not 1 <= len(login) <= 39 or not _LOGIN.fullmatch(login):
        raise SiweError(
            "bad_login",
            f"login: {login!r} is not a GitHub login; use 1-39 letters, digits or single "
            "hyphens, not starting or ending with a hyphen",
        )
    return login


def link_statement(login: str) -> str:
    """The statement of a link message: the one sentence the user reads before signing."""
    return f"Link this wallet to the GitHub account {validate_github_login(login)} on kdemo"


def _timestamp(field: str, value: datetime) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise SiweError("malformed", f"{field}: expected a timezone-aware datetime, got {value!r}")
    return rfc3339(value)


def build_link_message(
    *,
    domain: str,
    uri: str,
    address: str,
    login: str,
    chain_id: int,
    nonce: str,
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    """The EIP-4361 text a wallet signs to link `address` to the GitHub account `login`."""
    if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
        raise SiweError(
            "malformed",
            f"domain: {domain!r} is not a host[:port]; pass the public host of frontend",
        )
    if not isinstance(uri, str) or not _URI.fullmatch(uri):
        raise SiweError(
            "malformed", f"uri: {uri!r} is not an absolute URI such as https://host/link"
        )
    if not isinstance(address, str) or not is_hex_address(address):
        raise SiweError(
            "bad_address",
            f"address: {address!r} is not an Ethereum address; pass 0x + 40 hex digits",
        )
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 1:
        raise SiweError("malformed", f"chain_id: expected a positive integer, got {chain_id!r}")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise SiweError(
            "malformed", f"nonce: {nonce!r} must be at least 8 letters or digits; use issue_nonce"
        )
    issued = _timestamp("issued_at", issued_at)
    expires = _timestamp("expires_at", expires_at)
    if expires_at <= issued_at:
        raise SiweError("malformed", "expires_at: must be later than issued_at")
    return "\n".join(
        [
            f"{domain}{_HEADER_SUFFIX}",
            to_checksum_address(address),
            "",
            link_statement(login),
            "",
            f"URI: {uri}",
            "Version: 1",
            f"Chain ID: {chain_id}",
            f"Nonce: {nonce}",
            f"Issued At: {issued}",
            f"Expiration Time: {expires}",
        ]
    )


def _field(line: str, name: str, pattern: re.Pattern[str]) -> str:
    prefix = f"{name}: "
    if not line.startswith(prefix):
        raise SiweError("malformed", f"message: expected a '{prefix}...' line, got {line!r:.80}")
    value = line[len(prefix) :]
    if not pattern.fullmatch(value):
        raise SiweError("malformed", f"message: {name} {value!r:.80} is not well formed")
    return value


def _parse_time(name: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise SiweError("malformed", f"message: {name} {value!r} is not a valid date") from exc


def parse_message(text: str) -> SiweMessage:
    """Parse a kdemo link message strictly; `SiweError("malformed", ...)` for any deviation."""
    if not isinstance(text, str):
        raise SiweError("malformed", f"message: expected text, got {type(text).__name__}")
    if "\r" in text:
        raise SiweError("malformed", "message: lines must end with \\n only, not \\r\\n")
    lines = text.split("\n")
    if len(lines) != 11:
        raise SiweError(
            "malformed",
            f"message: expected 11 lines (EIP-4361 with statement and expiration), got "
            f"{len(lines)}; sign the message exactly as /api/link-message returned it",
        )
    header, address, blank1, statement, blank2, *fields = lines
    if not header.endswith(_HEADER_SUFFIX):
        raise SiweError(
            "malformed", f"message: first line must end with {_HEADER_SUFFIX!r}, got {header!r:.80}"
        )
    domain = header[: -len(_HEADER_SUFFIX)]
    if not _DOMAIN.fullmatch(domain):
        raise SiweError("malformed", f"message: domain {domain!r:.80} is not a host[:port]")
    if not is_checksum_address(address):
        raise SiweError(
            "bad_address",
            f"message: address {address!r:.80} is not an EIP-55 checksum address",
        )
    if blank1 or blank2:
        raise SiweError("malformed", "message: the statement must sit between two blank lines")
    match = _STATEMENT.fullmatch(statement)
    if match is None:
        raise SiweError(
            "malformed",
            f"message: statement {statement!r:.100} is not "
            "'Link this wallet to the GitHub account <login> on kdemo'",
        )
    login = validate_github_login(match["login"])
    uri = _field(fields[0], "URI", _URI)
    version = _field(fields[1], "Version", re.compile("1"))
    chain_id = int(_field(fields[2], "Chain ID", _CHAIN_ID))
    nonce = _field(fields[3], "Nonce", _NONCE)
    issued_at = _parse_time("Issued At", _field(fields[4], "Issued At", _DATETIME))
    expires_at = _parse_time("Expiration Time", _field(fields[5], "Expiration Time", _DATETIME))
    if expires_at <= issued_at:
        raise SiweError("malformed", "message: Expiration Time must be later than Issued At")
    return SiweMessage(
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at,
        expires_at=expires_at,
        login=login,
    )


def verify_link_message(
    text: str,
    signature: str,
    *,
    expected_domain: str | None,
    chain_id: int,
    now: datetime,
) -> SiweMessage:
    """Parse and verify a signed link message; the parsed message if all holds, else `SiweError`.

    Checks: the EIP-191 signer is the message's address, the domain (when given)
    and chain id match, and `now` lies between `Issued At` (with `CLOCK_SKEW_S`)
    and `Expiration Time`. The nonce is not checked here: frontend checks it with
    `verify_nonce` (it holds the secret), identity makes it single-use.
    """
    message = parse_message(text)
    if expected_domain is not None and message.domain != expected_domain:
        raise SiweError(
            "domain_mismatch",
            f"message: domain {message.domain!r} is not {expected_domain!r}; "
            "sign a message fetched from this site",
        )
    if message.chain_id != chain_id:
        raise SiweError(
            "chain_mismatch",
            f"message: Chain ID {message.chain_id} is not {chain_id}; switch the wallet's network",
        )
    if now.tzinfo is None:
        raise SiweError("malformed", f"now: expected a timezone-aware datetime, got {now!r}")
    if now >= message.expires_at:
        raise SiweError(
            "expired",
            f"message: expired at {message.expires_at.isoformat()}; fetch and sign a new one",
        )
    if (message.issued_at - now).total_seconds() > CLOCK_SKEW_S:
        raise SiweError(
            "not_yet_valid",
            f"message: Issued At {message.issued_at.isoformat()} lies in the future; "
            "check the clocks",
        )
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise SiweError(
            "bad_signature",
            f"signature: expected 0x followed by 130 hex digits (65 bytes), got {signature!r:.80}",
        )
    try:
        signer = Account.recover_message(
            encode_defunct(text=text), signature=bytes.fromhex(signature[2:])
        )
    except Exception as exc:  # eth-keys raises several types for bad r, s or v
        raise SiweError("bad_signature", f"signature: cannot recover a signer ({exc})") from exc
    if signer != message.address:
        raise SiweError(
            "signer_mismatch",
            f"signature: made by {signer}, not by {message.address} named in the message; "
            "sign with the wallet the message names",
        )
    return message


def _nonce_secret(secret_hex: str) -> bytes:
    try:
        secret = bytes.fromhex(secret_hex)
    except (ValueError, TypeError) as exc:
        raise ValueError("KDEMO_LINK_NONCE_SECRET: not hex; pass at least 32 hex digits") from exc
    if len(secret) < 16:
        raise ValueError(
            f"KDEMO_LINK_NONCE_SECRET: {len(secret)} bytes is too short; use at least 16 bytes"
        )
    return secret


def _nonce_mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _NONCE_LABEL + b"|" + body, hashlib.sha256).digest()[:_NONCE_MAC_BYTES]


def _unix(now: datetime | None) -> int:
    if now is None:
        return int(time.time())
    if now.tzinfo is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")
    return int(now.timestamp())


def issue_nonce(secret_hex: str, *, ttl_s: int, now: datetime | None = None) -> str:
    """A fresh alphanumeric nonce (60 lower-case base32 characters) valid for `ttl_s` seconds."""
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
        raise ValueError(f"ttl_s: expected a positive number of seconds, got {ttl_s!r}")
    secret = _nonce_secret(secret_hex)
    body = _NONCE_LAYOUT.pack(_NONCE_VERSION, _unix(now) + ttl_s, secrets.token_bytes(12))
    raw = body + _nonce_mac(secret, body)
    return base64.b32encode(raw).decode().rstrip("=").lower()


def verify_nonce(nonce: str, secret_hex: str, now: datetime | None = None) -> datetime:
    """The expiry of a nonce this deployment issued; `SiweError` if forged or expired."""
    secret = _nonce_secret(secret_hex)
    if not isinstance(nonce, str) or not _NONCE_TEXT.fullmatch(nonce):
        raise SiweError("bad_nonce", "nonce: not a kdemo link nonce; fetch a new link message")
    try:
        raw = base64.b32decode(nonce.upper() + "=" * (-len(nonce) % 8))
    except binascii.Error as exc:
        raise SiweError("bad_nonce", "nonce: not a kdemo link nonce; fetch a new message") from exc
    # unused trailing bits could give one nonce several spellings; identity keys on the text
    if base64.b32encode(raw).decode().rstrip("=").lower() != nonce:
        raise SiweError("bad_nonce", "nonce: not in canonical form; fetch a new link message")
    body, mac = raw[: _NONCE_LAYOUT.size], raw[_NONCE_LAYOUT.size :]
    if not hmac.compare_digest(mac, _nonce_mac(secret, body)):
        raise SiweError(
            "bad_nonce", "nonce: not issued by this deployment; fetch a new link message"
        )
    version, expires, _ = _NONCE_LAYOUT.unpack(body)
    if version != _NONCE_VERSION:
        raise SiweError("bad_nonce", f"nonce: unknown version {version}; fetch a new message")
    if _unix(now) >= expires:
        raise SiweError("nonce_expired", "nonce: expired; fetch and sign a new link message")
    return datetime.fromtimestamp(expires, UTC)


def link_code_for(nonce: str, secret_hex: str) -> str:
    """The link code of a verified nonce: 28 lower-case letters no one without the secret
    can compute from the nonce, the same each time (so a replayed message gets no new code)."""
    digest = hmac.new(
        _nonce_secret(secret_hex), _CODE_LABEL + b"|" + nonce.encode(), hashlib.sha256
    ).digest()
    # 256 bits taken modulo 26^28 (about 2^131): the bias is far below anything observable
    number, letters = int.from_bytes(digest, "big"), []
    for _ in range(LINK_CODE_LENGTH):
        number, digit = divmod(number, 26)
        letters.append(string.ascii_lowercase[digit])
    return "".join(letters)


def new_link_code() -> str:
    """A one-time link code: 28 lower-case ASCII letters from `secrets` (about 131 bits)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(LINK_CODE_LENGTH))
