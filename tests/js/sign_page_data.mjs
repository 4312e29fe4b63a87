// Sign what the pages produce with ethers, an implementation independent of eth-account.
// Reads {private_key, typed_data?, message?} as JSON on stdin; prints
// {address, hash?, typed_signature?, message_signature?} as JSON.
//
//   echo '{"private_key": "0x…", "message": "…"}' | node tests/js/sign_page_data.mjs

import { TypedDataEncoder, Wallet } from "ethers";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const wallet = new Wallet(input.private_key);
const out = { address: wallet.address };
if (input.typed_data) {
  const { domain, message, primaryType } = input.typed_data;
  // ethers derives EIP712Domain from the domain object and refuses it among the types
  const types = { ...input.typed_data.types };
  delete types.EIP712Domain;
  out.primary_type = TypedDataEncoder.getPrimaryType(types);
  if (out.primary_type !== primaryType) throw new Error(`primary type ${out.primary_type} != ${primaryType}`);
  out.hash = TypedDataEncoder.hash(domain, types, message);
  out.typed_signature = await wallet.signTypedData(domain, types, message);
}
if (typeof input.message === "string") {
  out.message_signature = await wallet.signMessage(input.message);
}
console.log(JSON.stringify(out));
