// Compares our msgpack encoding with socket.io-msgpack-parser's (npm,
// pinned), byte for byte, in both directions.
// Usage: node msgpack-wire.mjs <spec> <hex> [<spec> <hex> ...]
//   spec: a packet object as JSON, keys in the order Node's server builds
//         them, with {"$bin": "<hex>"} where a Buffer goes;
//   hex:  our encoding of the same packet.
// For each pair: the official Encoder must write exactly `hex`, and the
// official Decoder must read `hex` back as the spec's packet. Prints "ok",
// or "FAIL <why>" and exits 1.
import { Decoder, Encoder } from "socket.io-msgpack-parser";
import { isDeepStrictEqual } from "node:util";

const revive = (value) => {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "hex");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
};

const args = process.argv.slice(2);
const failures = [];
for (let i = 0; i + 1 < args.length; i += 2) {
  const packet = revive(JSON.parse(args[i]));
  const ours = args[i + 1];
  const official = Buffer.from(new Encoder().encode(packet)[0]).toString("hex");
  if (official !== ours) failures.push(`encode ${args[i]}: official ${official}, ours ${ours}`);
  const decoder = new Decoder();
  let decoded;
  decoder.on("decoded", (p) => (decoded = p));
  try {
    decoder.add(Buffer.from(ours, "hex"));
  } catch (err) {
    failures.push(`decode ${ours}: ${err.message}`);
    continue;
  }
  if (!isDeepStrictEqual(decoded, packet)) failures.push(`decode ${ours}: ${JSON.stringify(decoded)}`);
}
if (failures.length > 0 || args.length === 0) {
  console.log(`FAIL ${failures.join("; ") || "no packets"}`);
  process.exit(1);
}
console.log("ok");
