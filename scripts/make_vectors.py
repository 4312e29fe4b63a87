"""Write the golden vectors for the EIP-712 Bounty and the SIWE link message.

    uv run python scripts/make_vectors.py            # (re)write tests/vectors/*.json
    uv run python scripts/make_vectors.py --check    # exit 1 if the files are out of date

The vectors pin what `services.common.eip712` and `services.common.siwe` produce
(typed data, digest, signature of a fixed key). The Python tests reproduce them
and `tests/js/check_vectors.mjs` recomputes them with ethers, so any drift
between this code and what a browser wallet signs shows up as a failing test.
Signatures are deterministic (RFC 6979), so regenerating changes nothing unless
the code did.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from services.common.eip712 import (
    bounty_typed_data,
    intent_id,
    recover_signer,
    sign_typed_data,
    typed_data_hash,
)
from services.common.siwe import build_link_message, verify_link_message

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"

# Account #0 of the well-known public test mnemonic ("test test ... junk"): never holds value.
TEST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TEST_SALT = "0x6b64656d6f2d676f6c64656e2d766563746f72732d73616c742d303030303031"

EIP712_CASES: list[dict[str, Any]] = [
    {
        "name": "issue comment on mainnet, mixed-case repository",
        "inputs": {
            "repository": "Octo-Org/Hello-World",
            "number": 42,
            "source": "issue_comment",
            "source_id": 1234567890,
            "match_index": 0,
            "denomination": "USDC",
            "amount": 50,
            "deadline": 1767225600,
            "chain_id": 1,
            "salt": TEST_SALT,
        },
    },
    {
        "name": "review comment, largest amount, Sepolia",
        "inputs": {
            "repository": "kdemo/bounties",
            "number": 7,
            "source": "review_comment",
            "source_id": 2000000001,
            "match_index": 4,
            "denomination": "ETH",
            "amount": 10**18,
            "deadline": 4102444800,
            "chain_id": 11155111,
            "salt": TEST_SALT,
        },
    },
    {
        "name": "pull request opened, other salt",
        "inputs": {
            "repository": "a/b",
            "number": 1,
            "source": "pull_request",
            "source_id": 3,
            "match_index": 1,
            "denomination": "DAI",
            "amount": 1,
            "deadline": 1700000000,
            "chain_id": 1,
            "salt": "0x" + "00" * 31 + "01",
        },
    },
]

SIWE_CASES: list[dict[str, Any]] = [
    {
        "name": "local frontend on loopback",
        "inputs": {
            "domain": "127.0.0.1:8443",
            "uri": "http://127.0.0.1:8443/link",
            "login": "octocat",
            "chain_id": 1,
            "nonce": "k3n7q2x9w5m8r4t6",
            "issued_at": "2025-01-01T00:00:00+00:00",
            "expires_at": "2025-01-01T00:15:00+00:00",
        },
    },
    {
        "name": "public host, hyphenated login, Sepolia",
        "inputs": {
            "domain": "kdemo.example.org",
            "uri": "https://kdemo.example.org/link",
            "login": "The-Octo-Cat1",
            "chain_id": 11155111,
            "nonce": "mzxw6ytboi4dsnzsgq2tknrxhaydcmrtgq2tmnzyhe4donbsgu3ta",
            "issued_at": "2030-06-30T23:59:59+00:00",
            "expires_at": "2030-07-01T00:14:59+00:00",
        },
    },
]


def eip712_vectors() -> dict[str, Any]:
    """Every EIP-712 case with its typed data, digest and signature."""
    address = Account.from_key(TEST_KEY).address
    cases = []
    for case in EIP712_CASES:
        inputs = dict(case["inputs"])
        iid = intent_id(
            inputs["repository"],
            inputs["number"],
            inputs["source"],
            inputs["source_id"],
            inputs.pop("match_index"),
        )
        typed = bounty_typed_data(intent_id=iid, **inputs)
        signature = sign_typed_data(typed, TEST_KEY)
        if recover_signer(typed, signature) != address:
            raise SystemExit(f"{case['name']}: the signature does not recover to {address}")
        cases.append(
            {
                **case,
                "intent_id": iid,
                "typed_data": typed,
                "hash": typed_data_hash(typed),
                "signature": signature,
            }
        )
    return {
        "description": "EIP-712 Bounty golden vectors; regenerate with scripts/make_vectors.py",
        "private_key": TEST_KEY,
        "address": address,
        "cases": cases,
    }


def siwe_vectors() -> dict[str, Any]:
    """Every SIWE case with its message text and EIP-191 signature."""
    address = Account.from_key(TEST_KEY).address
    cases = []
    for case in SIWE_CASES:
        inputs = case["inputs"]
        issued_at = datetime.fromisoformat(inputs["issued_at"])
        expires_at = datetime.fromisoformat(inputs["expires_at"])
        message = build_link_message(
            domain=inputs["domain"],
            uri=inputs["uri"],
            address=address.lower(),
            login=inputs["login"],
            chain_id=inputs["chain_id"],
            nonce=inputs["nonce"],
            issued_at=issued_at,
            expires_at=expires_at,
        )
        signed = Account.sign_message(encode_defunct(text=message), TEST_KEY)
        signature = "0x" + bytes(signed.signature).hex()
        verify_link_message(
            message,
            signature,
            expected_domain=inputs["domain"],
            chain_id=inputs["chain_id"],
            now=issued_at.astimezone(UTC),
        )
        cases.append({**case, "message": message, "signature": signature})
    return {
        "description": "SIWE (EIP-4361) link message golden vectors; regenerate with "
        "scripts/make_vectors.py",
        "private_key": TEST_KEY,
        "address": address,
        "cases": cases,
    }


def render() -> dict[str, str]:
    """File name -> the exact text each vector file should hold."""
    return {
        name: json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        for name, data in (("eip712_bounty.json", eip712_vectors()), ("siwe.json", siwe_vectors()))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the EIP-712 and SIWE golden vectors.")
    parser.add_argument(
        "--check", action="store_true", help="only report whether the files are up to date"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = VECTORS / name
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(name)
        else:
            VECTORS.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run uv run python scripts/make_vectors.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
