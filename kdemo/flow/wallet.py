"""A headless wallet: EIP-712 and EIP-191 signatures with eth-account, and `kdemo sign`.

The wallet signs exactly what frontend hands out (`GET /api/intents/<token>`),
the way a browser wallet answers `eth_signTypedData_v4`, then posts the
signature back (`POST /api/signatures`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from kdemo.errors import KdemoError, UsageError
from kdemo.flow.http import json_answer

__all__ = [
    "TEST_ACCOUNT_ADDRESS",
    "TEST_ACCOUNT_KEY",
    "SignResult",
    "SigningUrl",
    "Wallet",
    "fetch_typed_data",
    "normalise_typed_data",
    "parse_signing_url",
    "recover_personal",
    "recover_typed_data",
    "sign_intent",
]

# The first account of the well-known public test mnemonic ("test test ... junk") used by
# Hardhat and Anvil: public, so anything it signs proves nothing; it is only the default.
TEST_ACCOUNT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TEST_ACCOUNT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_INT_TYPE = re.compile(r"^u?int(\d*)$")


@dataclass(frozen=True)
class Wallet:
    """One private key and what it can sign."""

    key: str
    """`0x` + 64 hex digits."""

    @classmethod
    def from_key(cls, key: str, *, source: str = "--key") -> Wallet:
        """The wallet of a hex private key, or a UsageError naming where the key came from."""
        key = key.strip()
        if not _KEY.match(key):
            raise UsageError(
                f"{source} is not a private key: expected 64 hex digits, optionally with 0x",
                "e.g. --key 0x$(openssl rand -hex 32)",
            )
        if not key.startswith("0x"):
            key = "0x" + key
        try:
            Account.from_key(key)
        except (ValueError, TypeError) as exc:  # zero or above the curve order
            raise UsageError(f"{source} is not a valid secp256k1 key: {exc}") from exc
        return cls(key=key.lower())

    @classmethod
    def fresh(cls) -> Wallet:
        """A new random wallet (what `smoke` uses, so every run is a new funder)."""
        return cls(key=Account.create().key.to_0x_hex())

    @classmethod
    def test_account(cls) -> Wallet:
        return cls(key=TEST_ACCOUNT_KEY)

    @property
    def address(self) -> str:
        """The checksummed address."""
        return str(Account.from_key(self.key).address)

    @property
    def is_test_account(self) -> bool:
        return self.key == TEST_ACCOUNT_KEY

    def sign_typed_data(self, typed: Mapping[str, Any]) -> str:
        """`eth_signTypedData_v4` of a full EIP-712 document; `0x` + 130 hex digits."""
        message = encode_typed_data(full_message=normalise_typed_data(typed))
        signed = Account.sign_message(message, private_key=self.key)
        return str(signed.signature.to_0x_hex())

    def personal_sign(self, text: str) -> str:
        """EIP-191 `personal_sign` of a text message (what SIWE asks for)."""
        signed = Account.sign_message(encode_defunct(text=text), private_key=self.key)
        return str(signed.signature.to_0x_hex())


def recover_typed_data(typed: Mapping[str, Any], signature: str) -> str:
    """The checksummed address that signed the typed data."""
    message = encode_typed_data(full_message=normalise_typed_data(typed))
    return str(Account.recover_message(message, signature=signature))


def recover_personal(text: str, signature: str) -> str:
    return str(Account.recover_message(encode_defunct(text=text), signature=signature))


def normalise_typed_data(typed: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with every (u)int field as a Python int.

    frontend sends every uint256 as a decimal string (JavaScript cannot hold them);
    the wallet turns them back into numbers as MetaMask does before hashing.
    """
    for required in ("types", "primaryType", "domain", "message"):
        if required not in typed:
            raise KdemoError(
                f"the typed data has no {required!r} field",
                "frontend's GET /api/intents/<token> must answer a full EIP-712 document",
            )
    types: Mapping[str, list[Mapping[str, str]]] = typed["types"]
    return {
        "types": types,
        "primaryType": typed["primaryType"],
        "domain": _normalise_struct("EIP712Domain", typed["domain"], types),
        "message": _normalise_struct(str(typed["primaryType"]), typed["message"], types),
    }


def _normalise_struct(
    name: str, value: Mapping[str, Any], types: Mapping[str, list[Mapping[str, str]]]
) -> dict[str, Any]:
    fields = {f["name"]: f["type"] for f in types.get(name, [])}
    return {k: _normalise(fields.get(k, ""), v, types, k) for k, v in value.items()}


def _normalise(type_name: str, value: Any, types: Mapping[str, Any], field: str) -> Any:
    if type_name.endswith("]") and isinstance(value, list):
        inner = type_name[: type_name.rindex("[")]
        return [_normalise(inner, v, types, field) for v in value]
    if type_name in types and isinstance(value, Mapping):
        return _normalise_struct(type_name, value, types)
    if _INT_TYPE.match(type_name) and isinstance(value, str):
        try:
            return int(value, 0) if value.lower().startswith(("0x", "-0x")) else int(value)
        except ValueError as exc:
            raise KdemoError(f"typed data field {field!r} is not an integer: {value!r}") from exc
    return value


@dataclass(frozen=True)
class SigningUrl:
    base: str
    """`scheme://host:port` of frontend, taken from the URL itself."""
    token: str


def parse_signing_url(url: str) -> SigningUrl:
    """Split a signing URL (`http://host/sign?t=<token>`) into frontend's origin and the token."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise KdemoError(
            f"{url!r} is not a signing URL: it needs http(s)://host",
            "pass the URL simulate-comment printed, e.g. http://127.0.0.1:8080/sign?t=...",
        )
    tokens = parse_qs(parts.query).get("t", [])
    if len(tokens) != 1 or not tokens[0]:
        raise KdemoError(
            f"{url!r} is not a signing URL: it has no t=<token> query parameter",
            "pass the URL simulate-comment printed, unchanged",
        )
    return SigningUrl(base=f"{parts.scheme}://{parts.netloc}", token=tokens[0])


def fetch_typed_data(client: httpx.Client, signing: SigningUrl) -> dict[str, Any]:
    """frontend's EIP-712 document for the token (`GET /api/intents/<token>`)."""
    response = client.get(f"{signing.base}/api/intents/{signing.token}")
    answer = json_answer(response, "frontend GET /api/intents/<token>")
    if isinstance(answer, dict) and "types" not in answer:
        # Accept the document wrapped with the intent's status around it.
        for key in ("typed_data", "typedData"):
            if isinstance(answer.get(key), dict):
                return dict(answer[key])
    if not isinstance(answer, dict):
        raise KdemoError("frontend answered GET /api/intents/<token> with something not an object")
    return answer


@dataclass(frozen=True)
class SignResult:
    address: str
    signature: str
    redirect: str
    """The issue or pull request the browser would go to next."""
    answer: dict[str, Any]

    @property
    def status(self) -> str:
        """frontend's word for it: `signed` (the first wallet), `offer` (another wallet signed
        first) or `already_signed` (this wallet's signature was recorded before)."""
        return str(self.answer.get("status") or "signed")

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "status": self.status,
            "signature": self.signature,
            "redirect": self.redirect,
        }


def sign_intent(client: httpx.Client, url: str, wallet: Wallet) -> SignResult:
    """Fetch the intent behind a signing URL, sign it and post the signature."""
    signing = parse_signing_url(url)
    typed = fetch_typed_data(client, signing)
    signature = wallet.sign_typed_data(typed)
    response = client.post(
        f"{signing.base}/api/signatures",
        json={"token": signing.token, "address": wallet.address, "signature": signature},
        headers={"Accept": "application/json"},
    )
    answer = json_answer(response, "frontend POST /api/signatures")
    if not isinstance(answer, dict) or not answer.get("redirect"):
        raise KdemoError(
            "frontend accepted the signature but named no issue to go to",
            "its JSON answer to POST /api/signatures must carry `redirect`",
        )
    return SignResult(
        address=wallet.address, signature=signature, redirect=str(answer["redirect"]), answer=answer
    )
