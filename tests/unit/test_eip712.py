"""The EIP-712 Bounty: how it is built, hashed, signed and verified."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from services.common.eip712 import (
    BOUNTY_TYPES,
    MAX_AMOUNT,
    SignatureError,
    TypedDataError,
    bounty_typed_data,
    intent_id,
    message_fields,
    recover_signer,
    sign_typed_data,
    typed_data_hash,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "eip712_bounty.json").read_text()
)
KEY = VECTORS["private_key"]
ADDRESS = VECTORS["address"]
SALT = "0x" + "ab" * 32
INTENT = "0x" + "12" * 32


def make(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "intent_id": INTENT,
        "repository": "Octo/Hello",
        "number": 5,
        "source": "issue_comment",
        "source_id": 99,
        "denomination": "USDC",
        "amount": 50,
        "deadline": 1_800_000_000,
        "chain_id": 1,
        "salt": SALT,
    }
    fields.update(overrides)
    return bounty_typed_data(**fields)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_golden_vectors_are_reproduced(case: dict[str, Any]) -> None:
    """Every committed vector's intent id, typed data, digest and signature come out the same."""
    inputs = dict(case["inputs"])
    match_index = inputs.pop("match_index")
    iid = intent_id(
        inputs["repository"], inputs["number"], inputs["source"], inputs["source_id"], match_index
    )
    typed = bounty_typed_data(intent_id=iid, **inputs)
    assert iid == case["intent_id"]
    assert typed == case["typed_data"]
    assert typed_data_hash(typed) == case["hash"]
    assert sign_typed_data(typed, KEY) == case["signature"]
    assert recover_signer(case["typed_data"], case["signature"]) == ADDRESS


def test_vector_key_is_the_public_test_account() -> None:
    """The vectors use the well-known test account, whose address everyone recognises."""
    assert Account.from_key(KEY).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_typed_data_has_the_wallet_shape() -> None:
    """The JSON is what eth_signTypedData_v4 takes: types, primaryType, domain and message."""
    typed = make(repository="Octo/Hello", denomination="usdc", chain_id=10)
    assert typed["primaryType"] == "Bounty"
    assert typed["types"] == BOUNTY_TYPES
    assert typed["domain"] == {"name": "kdemo", "version": "1", "chainId": "10", "salt": SALT}
    assert typed["message"] == {
        "intentId": INTENT,
        "repository": "octo/hello",
        "number": "5",
        "source": "issue_comment",
        "sourceId": "99",
        "denomination": "USDC",
        "amount": "50",
        "deadline": "1800000000",
    }
    # survives a trip through JSON unchanged, as it does to a browser
    assert json.loads(json.dumps(typed)) == typed


def test_types_are_not_shared_between_calls() -> None:
    """Mutating one result's types cannot corrupt the next one."""
    first = make()
    first["types"]["Bounty"].pop()
    assert make()["types"] == BOUNTY_TYPES


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", "commit_comment"),
        ("source", ""),
        ("intent_id", "0x1234"),
        ("intent_id", "12" * 32),
        ("salt", "0x" + "zz" * 32),
        ("repository", "no-slash"),
        ("repository", "a/b/c"),
        ("number", 0),
        ("number", "5"),
        ("number", True),
        ("source_id", -1),
        ("amount", 0),
        ("amount", MAX_AMOUNT + 1),
        ("amount", 1.5),
        ("deadline", 0),
        ("chain_id", 0),
        ("denomination", "U"),
        ("denomination", "1INCH"),
        ("denomination", "US-DC"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(field: str, value: object) -> None:
    """Each malformed field is a TypedDataError (a ValueError) whose message names it."""
    with pytest.raises(TypedDataError, match=f"^{field}"):
        make(**{field: value})


def test_unknown_source_is_a_value_error() -> None:
    """A source outside the four GitHub kinds is a plain ValueError to callers."""
    with pytest.raises(ValueError, match="source: 'push' is not a bounty source"):
        make(source="push")


def test_signature_recovers_the_signer() -> None:
    """A signature made with a key recovers that key's checksum address."""
    typed = make()
    signature = sign_typed_data(typed, KEY)
    assert signature.startswith("0x")
    assert len(signature) == 132
    assert recover_signer(typed, signature) == ADDRESS


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("message", "amount"), "51"),
        (("message", "repository"), "octo/other"),
        (("message", "deadline"), "1800000001"),
        (("message", "intentId"), "0x" + "13" * 32),
        (("domain", "salt"), "0x" + "ac" * 32),
        (("domain", "chainId"), "2"),
        (("domain", "name"), "other"),
    ],
)
def test_tampered_typed_data_recovers_another_signer(path: tuple[str, str], value: str) -> None:
    """Changing any field after signing (wrong salt included) recovers a different address."""
    typed = make()
    signature = sign_typed_data(typed, KEY)
    tampered = copy.deepcopy(typed)
    tampered[path[0]][path[1]] = value
    assert typed_data_hash(tampered) != typed_data_hash(typed)
    assert recover_signer(tampered, signature) != ADDRESS


def test_decimal_strings_hash_like_integers() -> None:
    """The decimal-string JSON hashes exactly as the same values given as integers."""
    typed = make(amount=MAX_AMOUNT, chain_id=11155111)
    as_ints = copy.deepcopy(typed)
    as_ints["domain"]["chainId"] = 11155111
    for key in ("number", "sourceId", "amount", "deadline"):
        as_ints["message"][key] = int(typed["message"][key])
    assert typed_data_hash(as_ints) == typed_data_hash(typed)


@pytest.mark.parametrize("value", ["0x32", "1e3", "-5", " 5", "05", ""])
def test_non_decimal_uint_strings_are_refused(value: str) -> None:
    """A uint256 string that is not plain decimal (hex, exponent, sign, padding) is refused."""
    typed = make()
    typed["message"]["amount"] = value
    with pytest.raises(TypedDataError, match=r"message\.amount"):
        typed_data_hash(typed)


@pytest.mark.parametrize(
    "signature",
    ["", "0x", "0x1234", "0x" + "zz" * 65, "ab" * 65, "0x" + "ab" * 64, "0x" + "ab" * 66],
)
def test_malformed_signature_is_a_signature_error(signature: str) -> None:
    """A signature that is not 65 bytes of 0x hex is a SignatureError naming the field."""
    with pytest.raises(SignatureError, match=r"^signature: expected 0x"):
        recover_signer(make(), signature)


def test_unrecoverable_signature_is_a_signature_error() -> None:
    """65 well-formed bytes with an impossible v are refused rather than crashing."""
    signature = sign_typed_data(make(), KEY)
    with pytest.raises(SignatureError, match="cannot recover"):
        recover_signer(make(), signature[:-2] + "05")


@pytest.mark.parametrize(
    "typed",
    [
        {},
        {"types": {}, "primaryType": "Bounty", "domain": {}, "message": {}},
        {"types": BOUNTY_TYPES, "primaryType": "Nope", "domain": {}, "message": {}},
    ],
)
def test_malformed_typed_data_is_a_typed_data_error(typed: dict[str, Any]) -> None:
    """Typed data without its types, domain or primary type is refused with a clear error."""
    with pytest.raises(TypedDataError):
        typed_data_hash(typed)


def test_missing_message_field_is_named() -> None:
    """A message missing one Bounty field names that field."""
    typed = make()
    del typed["message"]["sourceId"]
    with pytest.raises(TypedDataError, match=r"message\.sourceId: missing"):
        typed_data_hash(typed)


def test_bad_private_key_is_refused() -> None:
    """Signing with something that is not a key says what a key looks like."""
    with pytest.raises(ValueError, match="private_key: not a valid secp256k1 key"):
        sign_typed_data(make(), "0x1234")


def test_message_fields_round_trip() -> None:
    """message_fields gives back the builder's keywords, with ints for every uint256."""
    typed = make(amount=MAX_AMOUNT)
    fields = message_fields(typed)
    assert fields == {
        "intent_id": INTENT,
        "repository": "octo/hello",
        "number": 5,
        "source": "issue_comment",
        "source_id": 99,
        "denomination": "USDC",
        "amount": MAX_AMOUNT,
        "deadline": 1_800_000_000,
    }
    assert bounty_typed_data(**fields, chain_id=1, salt=SALT) == typed


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("message", "repository", "Octo/Hello", "canonical"),
        ("message", "amount", 50, "canonical"),
        ("message", "extra", "1", "expected the fields"),
        ("domain", "name", "other", "domain"),
        ("domain", "chainId", 1, "canonical"),
        ("message", "source", "push", "source"),
    ],
)
def test_message_fields_refuses_other_shapes(
    section: str, key: str, value: object, message: str
) -> None:
    """Anything but the exact canonical Bounty is refused, so a caller can trust every field."""
    typed = make()
    typed[section][key] = value
    with pytest.raises(TypedDataError, match=message):
        message_fields(typed)


def test_message_fields_refuses_other_types() -> None:
    """Typed data with another struct definition is not a kdemo Bounty."""
    typed = make()
    typed["types"]["Bounty"] = typed["types"]["Bounty"][:-1]
    with pytest.raises(TypedDataError, match="not the kdemo Bounty type"):
        message_fields(typed)


def test_intent_id_is_sha256_of_the_documented_key() -> None:
    """The intent id is 0x + sha256 of 'repo|number|source|source_id|match_index', repo lower."""
    expected = "0x" + hashlib.sha256(b"octo/hello|5|issue_comment|99|2").hexdigest()
    assert intent_id("Octo/Hello", 5, "issue_comment", 99, 2) == expected


@pytest.mark.parametrize(
    "changed",
    [
        ("octo/other", 5, "issue_comment", 99, 0),
        ("octo/hello", 6, "issue_comment", 99, 0),
        ("octo/hello", 5, "review_comment", 99, 0),
        ("octo/hello", 5, "issue_comment", 100, 0),
        ("octo/hello", 5, "issue_comment", 99, 1),
    ],
)
def test_intent_id_changes_with_every_part(changed: tuple[str, int, str, int, int]) -> None:
    """Any part of the bounty's place gives another id; the same place gives the same id."""
    base = intent_id("octo/hello", 5, "issue_comment", 99, 0)
    assert intent_id("OCTO/Hello", 5, "issue_comment", 99, 0) == base
    assert intent_id(*changed) != base


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("octo", 5, "issue_comment", 99, 0), "repository"),
        (("octo/hello", 0, "issue_comment", 99, 0), "number"),
        (("octo/hello", 5, "push", 99, 0), "source"),
        (("octo/hello", 5, "issue", 0, 0), "source_id"),
        (("octo/hello", 5, "issue", 99, -1), "match_index"),
    ],
)
def test_intent_id_refuses_bad_parts(args: tuple[Any, ...], field: str) -> None:
    """Each bad part is refused with an error naming it."""
    with pytest.raises(ValueError, match=f"^{field}"):
        intent_id(*args)
