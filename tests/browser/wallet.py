"""A browser wallet for tests: EIP-1193 in the page, eth-account keys in the test.

The page sees a provider announced through EIP-6963 (or set as `window.ethereum`);
each request crosses into Python through a Playwright binding and is answered the
way a real wallet answers: accounts only once connected, the active chain enforced
on `eth_signTypedData_v4`, 4001 when the user declines, 4902 for a chain it does not
know. Behaviours a test needs (locked, declining, tampering) are plain attributes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import BrowserContext

__all__ = ["FakeWallet", "install_wallets"]

_PROVIDER_JS = (Path(__file__).parent / "fake_provider.js").read_text()
KNOWN_CHAINS = frozenset({1, 11155111})


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _plain_ints(typed: dict[str, Any]) -> dict[str, Any]:
    """The typed data with its decimal-string integers as ints, as eth-account wants them."""
    types = typed["types"]

    def coerce(type_name: str, value: dict[str, Any]) -> dict[str, Any]:
        out = dict(value)
        for member in types[type_name]:
            kind, name = member["type"], member["name"]
            if name in out and kind.startswith(("uint", "int")) and isinstance(out[name], str):
                out[name] = int(out[name], 0)
        return out

    return {
        **typed,
        "domain": coerce("EIP712Domain", typed["domain"]),
        "message": coerce(typed["primaryType"], typed["message"]),
    }


@dataclass
class FakeWallet:
    """One wallet extension: its keys, its network and how its user behaves."""

    name: str
    keys: list[LocalAccount]
    chain_id: int = 1
    known_chains: frozenset[int] = KNOWN_CHAINS
    eip6963: bool = True
    legacy: bool = False
    locked: bool = False
    decline: set[str] = field(default_factory=set)
    """Methods the user declines in the wallet (answered 4001)."""
    tamper: bool = False
    """Sign the typed data with its amount changed (a wallet that lies)."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    connected: bool = False
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)

    @classmethod
    def fresh(cls, name: str, accounts: int = 1, **options: Any) -> FakeWallet:
        return cls(name, [Account.create() for _ in range(accounts)], **options)

    @property
    def addresses(self) -> list[str]:
        return [k.address for k in self.keys]

    def methods_called(self) -> list[str]:
        return [method for method, _ in self.calls]

    def _key(self, address: object) -> LocalAccount | None:
        if not self.connected or not isinstance(address, str):
            return None
        return next((k for k in self.keys if k.address.lower() == address.lower()), None)

    def handle(self, method: str, params: list[Any]) -> dict[str, Any]:
        """Answer one EIP-1193 request like a wallet extension would."""
        self.calls.append((method, params))
        if method in self.decline:
            return _error(4001, "User rejected the request.")
        if method == "eth_requestAccounts":
            if self.locked:
                return {"result": []}
            self.connected = True
            return {"result": self.addresses}
        if method == "eth_accounts":
            return {"result": self.addresses if self.connected and not self.locked else []}
        if method == "eth_chainId":
            return {"result": hex(self.chain_id)}
        if method == "wallet_switchEthereumChain":
            wanted = int(params[0]["chainId"], 16)
            if wanted not in self.known_chains:
                return _error(4902, f"Unrecognized chain ID {params[0]['chainId']}.")
            self.chain_id = wanted
            return {"result": None, "events": [["chainChanged", hex(wanted)]]}
        if method == "eth_signTypedData_v4":
            return self._sign_typed(params)
        if method == "personal_sign":
            key = self._key(params[1])
            if key is None:
                return _error(4100, "The requested account has not been authorized.")
            text = bytes.fromhex(str(params[0]).removeprefix("0x"))
            return {
                "result": key.sign_message(encode_defunct(primitive=text)).signature.to_0x_hex()
            }
        return _error(4200, f"The wallet does not support {method}.")

    def _sign_typed(self, params: list[Any]) -> dict[str, Any]:
        key = self._key(params[0])
        if key is None:
            return _error(4100, "The requested account has not been authorized.")
        typed = json.loads(params[1])
        domain_chain = int(typed["domain"]["chainId"])
        if domain_chain != self.chain_id:
            return _error(
                -32603,
                f'Provided chainId "{domain_chain}" must match '
                f'the active chainId "{self.chain_id}"',
            )
        if self.tamper:
            typed["message"]["amount"] = str(int(typed["message"]["amount"]) + 1)
        signable = encode_typed_data(full_message=_plain_ints(typed))
        return {"result": key.sign_message(signable).signature.to_0x_hex()}


def install_wallets(context: BrowserContext, wallets: list[FakeWallet], trace: list[str]) -> None:
    """Inject the wallets into every page of `context`; page states are appended to `trace`."""
    by_id = {w.id: w for w in wallets}

    def request(_source: object, wallet_id: str, method: str, params: list[Any]) -> dict[str, Any]:
        return by_id[wallet_id].handle(method, params)

    def report(_source: object, page: str, state: str, text: str) -> None:
        trace.append(f"{page}:{state}: {text}")

    context.expose_binding("kdemoWallet", request)
    context.expose_binding("kdemoTrace", report)
    config = {
        "wallets": [
            {
                "id": w.id,
                "uuid": str(uuid.UUID(w.id)),
                "name": w.name,
                "rdns": f"dev.kdemo.test.{w.name.lower().replace(' ', '-')}",
                "eip6963": w.eip6963,
                "legacy": w.legacy,
            }
            for w in wallets
        ]
    }
    context.add_init_script(_PROVIDER_JS.replace("__KDEMO_WALLETS__", json.dumps(config)))
