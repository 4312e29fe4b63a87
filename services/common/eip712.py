"""The EIP-712 `Bounty` a funder signs, and the intent id it names.

This module is the one place that builds the typed data: frontend serves it to
the browser, the CLI signs it, gateway and frontend verify it. The JSON it
returns is exactly what `eth_signTypedData_v4` takes, with every uint256
(`chainId` included) as a decimal string, so it travels to a browser without
losing precision; the functions that hash, sign and recover accept those strings
and turn them into integers before encoding.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Final

from eth_utils.crypto import keccak

from ._eth import Account, SignableMessage, encode_typed_data
from .intent_ids import (
    MAX_AMOUNT,
    SOURCES,
    TypedDataError,
    check_repository,
    check_source,
    check_uint,
    intent_id,
)

__all__ = [
    "BOUNTY_TYPES",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "MAX_AMOUNT",
    "SOURCES",
    "SignatureError",
    "TypedDataError",
    "bounty_typed_data",
    "intent_id",
    "message_fields",
    "recover_signer",
    "sign_typed_data",
    "typed_data_hash",
]

DOMAIN_NAME: Final = "kdemo"
DOMAIN_VERSION: Final = "1"

BOUNTY_TYPES: Final[dict[str, list[dict[str, str]]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "salt", "type": "bytes32"},
    ],
    "Bounty": [
        {"name": "intentId", "type": "bytes32"},
        {"name": "repository", "type": "string"},
        {"name": "number", "type": "uint256"},
        {"name": "source", "type": "string"},
        {"name": "sourceId", "type": "uint256"},
        {"name": "denomination", "type": "string"},
        {"name": "amount", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}

# message key in the typed data -> keyword of bounty_typed_data (and of message_fields)
_MESSAGE_KEYS: Final = {
    "intentId": "intent_id",
    "repository": "repository",
    "number": "number",
    "source": "source",
    "sourceId": "source_id",
    "denomination": "denomination",
    "amount": "amount",
    "deadline": "deadline",
}

_BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_SIGNED_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)")
_DENOMINATION = re.compile(r"[A-Za-z][A-Za-z0-9]{1,9}")


class SignatureError(ValueError):
    """A signature is malformed or cannot be recovered; the message says why."""


def _bytes32(field: str, value: object) -> str:
    if not isinstance(value, str) or not _BYTES32.fullmatch(value):
        raise TypedDataError(
            f"{field}: expected 0x followed by 64 hex digits, got {value!r}; "
            "pass a 32-byte value in hex"
        )
    return value.lower()


def bounty_typed_data(
    *,
    intent_id: str,
    repository: str,
    number: int,
    source: str,
    source_id: int,
    denomination: str,
    amount: int,
    deadline: int,
    chain_id: int,
    salt: str,
) -> dict[str, Any]:
    """The full `eth_signTypedData_v4` JSON of one bounty, uint256 values as decimal strings."""
    if not isinstance(denomination, str) or not _DENOMINATION.fullmatch(denomination):
        raise TypedDataError(
            f"denomination: {denomination!r} is not a denomination; "
            "use 2-10 ASCII letters or digits starting with a letter, such as USDC"
        )
    domain = {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": str(check_uint("chain_id", chain_id, minimum=1)),
        "salt": _bytes32("salt", salt),
    }
    message = {
        "intentId": _bytes32("intent_id", intent_id),
        "repository": check_repository(repository),
        "number": str(check_uint("number", number, minimum=1)),
        "source": check_source(source),
        "sourceId": str(check_uint("source_id", source_id, minimum=1)),
        "denomination": denomination.upper(),
        "amount": str(check_uint("amount", amount, minimum=1, maximum=MAX_AMOUNT)),
        "deadline": str(check_uint("deadline", deadline, minimum=1)),
    }
    return {
        "types": copy.deepcopy(BOUNTY_TYPES),
        "primaryType": "Bounty",
        "domain": domain,
        "message": message,
    }


def message_fields(typed: dict[str, Any]) -> dict[str, Any]:
    """Read a `Bounty` back as `bounty_typed_data` keywords (ints for uint256), checking its shape.

    Raises `TypedDataError` unless `typed` is exactly what `bounty_typed_data` builds,
    so a caller can compare every field with the recorded intent.
    """
    if not isinstance(typed, dict):
        raise TypedDataError(f"typed data: expected a JSON object, got {type(typed).__name__}")
    if typed.get("types") != BOUNTY_TYPES or typed.get("primaryType") != "Bounty":
        raise TypedDataError(
            "types: not the kdemo Bounty type; build the typed data with bounty_typed_data"
        )
    domain = typed.get("domain")
    if (
        not isinstance(domain, dict)
        or set(domain) != {"name", "version", "chainId", "salt"}
        or domain["name"] != DOMAIN_NAME
        or domain["version"] != DOMAIN_VERSION
    ):
        raise TypedDataError(
            f"domain: expected {{name: {DOMAIN_NAME!r}, version: {DOMAIN_VERSION!r}, chainId, "
            f"salt}}, got {domain!r}"
        )
    message = typed.get("message")
    if not isinstance(message, dict) or set(message) != set(_MESSAGE_KEYS):
        got = sorted(message) if isinstance(message, dict) else message
        raise TypedDataError(f"message: expected the fields {sorted(_MESSAGE_KEYS)}, got {got!r}")
    fields = _coerce_struct("Bounty", message, BOUNTY_TYPES, "message")
    result = {_MESSAGE_KEYS[key]: value for key, value in fields.items()}
    # rebuilding validates every value and catches non-canonical forms (upper-case repository...)
    rebuilt = bounty_typed_data(
        **result,
        chain_id=_coerce_value("uint256", domain["chainId"], BOUNTY_TYPES, "domain.chainId"),
        salt=domain["salt"],
    )
    if rebuilt != typed:
        raise TypedDataError(
            "typed data: not in canonical form (lower-case repository and hex, upper-case "
            "denomination, decimal strings); build it with bounty_typed_data"
        )
    return result


def _coerce_value(kind: str, value: Any, types: dict[str, Any], where: str) -> Any:
    """One value ready for eth-account: decimal strings of (u)intN become ints."""
    if kind.endswith("]"):
        if not isinstance(value, list):
            raise TypedDataError(f"{where}: expected a list for {kind}, got {value!r}")
        inner = kind[: kind.rindex("[")]
        return [_coerce_value(inner, item, types, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind in types:
        if not isinstance(value, dict):
            raise TypedDataError(f"{where}: expected an object for {kind}, got {value!r}")
        return _coerce_struct(kind, value, types, where)
    if kind.startswith(("uint", "int")) and isinstance(value, str):
        pattern = _DECIMAL if kind.startswith("uint") else _SIGNED_DECIMAL
        if not pattern.fullmatch(value):
            raise TypedDataError(
                f"{where}: {value!r} is not a decimal {kind}; send integers as decimal strings"
            )
        return int(value)
    return value


def _coerce_struct(name: str, value: dict[str, Any], types: dict[str, Any], where: str) -> Any:
    out: dict[str, Any] = {}
    for member in types[name]:
        key = member["name"]
        if key not in value:
            raise TypedDataError(f"{where}.{key}: missing; every {name} field must be present")
        out[key] = _coerce_value(member["type"], value[key], types, f"{where}.{key}")
    return out


def _signable(typed: dict[str, Any]) -> SignableMessage:
    if not isinstance(typed, dict):
        raise TypedDataError(f"typed data: expected a JSON object, got {type(typed).__name__}")
    types = typed.get("types")
    primary = typed.get("primaryType")
    if (
        not isinstance(types, dict)
        or "EIP712Domain" not in types
        or not isinstance(primary, str)
        or primary not in types
    ):
        raise TypedDataError(
            "types: expected EIP712Domain and the primaryType among the types; "
            "build the typed data with bounty_typed_data"
        )
    domain = typed.get("domain")
    message = typed.get("message")
    if not isinstance(domain, dict) or not isinstance(message, dict):
        raise TypedDataError("domain/message: expected JSON objects")
    full = {
        "types": types,
        "primaryType": primary,
        "domain": _coerce_struct("EIP712Domain", domain, types, "domain"),
        "message": _coerce_struct(primary, message, types, "message"),
    }
    try:
        return encode_typed_data(full_message=full)
    except (ValueError, TypeError, KeyError) as exc:  # eth-account's own validation
        raise TypedDataError(f"typed data: cannot be encoded: {exc}") from exc


def typed_data_hash(typed: dict[str, Any]) -> str:
    """The EIP-712 digest (0x + 64 hex) that the wallet signs."""
    signable = _signable(typed)
    digest: bytes = keccak(b"\x19" + signable.version + signable.header + signable.body)
    return "0x" + digest.hex()


def sign_typed_data(typed: dict[str, Any], private_key: str) -> str:
    """Sign typed data with a hex private key; 0x + 130 hex, as a browser wallet returns it."""
    signable = _signable(typed)
    try:
        signed = Account.sign_message(signable, private_key)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "private_key: not a valid secp256k1 key; pass 0x followed by 64 hex digits"
        ) from exc
    signature: bytes = signed.signature
    return "0x" + signature.hex()


def _signature_bytes(signature: object) -> bytes:
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise SignatureError(
            "signature: expected 0x followed by 130 hex digits (65 bytes r, s, v), "
            f"got {signature!r:.80}"
        )
    return bytes.fromhex(signature[2:])


def recover_signer(typed: dict[str, Any], signature: str) -> str:
    """The checksum address whose key signed `typed`; `SignatureError` if it cannot be told."""
    raw = _signature_bytes(signature)
    signable = _signable(typed)
    try:
        return str(Account.recover_message(signable, signature=raw))
    except Exception as exc:  # eth-keys raises several types for bad r, s or v
        raise SignatureError(f"signature: cannot recover a signer ({exc})") from exc
