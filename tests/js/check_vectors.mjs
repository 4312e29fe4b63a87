// Recompute the committed golden vectors with ethers, an implementation independent of
// eth-account, and print what it finds as JSON; tests/unit/test_vectors_node.py compares.
//
//   npm ci --prefix tests/js && node tests/js/check_vectors.mjs

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { TypedDataEncoder, Wallet, verifyMessage, verifyTypedData } from "ethers";

const vectors = join(dirname(fileURLToPath(import.meta.url)), "..", "vectors");
const load = (name) => JSON.parse(readFileSync(join(vectors, name), "utf8"));

const eip712 = load("eip712_bounty.json");
const siwe = load("siwe.json");

async function checkEip712() {
  const wallet = new Wallet(eip712.private_key);
  const out = [];
  for (const c of eip712.cases) {
    const { domain, message } = c.typed_data;
    // ethers derives EIP712Domain from the domain object and refuses it among the types
    const types = { ...c.typed_data.types };
    delete types.EIP712Domain;
    out.push({
      name: c.name,
      hash: TypedDataEncoder.hash(domain, types, message),
      signature: await wallet.signTypedData(domain, types, message),
      recovered: verifyTypedData(domain, types, message, c.signature),
    });
  }
  return { address: wallet.address, cases: out };
}

async function checkSiwe() {
  const wallet = new Wallet(siwe.private_key);
  const out = [];
  for (const c of siwe.cases) {
    out.push({
      name: c.name,
      signature: await wallet.signMessage(c.message),
      recovered: verifyMessage(c.message, c.signature),
    });
  }
  return { address: wallet.address, cases: out };
}

console.log(JSON.stringify({ eip712: await checkEip712(), siwe: await checkSiwe() }, null, 2));
