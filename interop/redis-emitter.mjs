// The official @socket.io/redis-emitter (npm, pinned), for the Rust
// emitter's interop tests (crates/suite/tests/redis_emitter.rs). Publishes
// one fixed sequence on the Redis at <redisUrl>, prints "ok" and exits:
//   bytes:                  the calls whose published bytes the Rust
//                           emitter must reproduce exactly;
//   rooms <idOnA> <idOnB>:  joins socket A to "blue", emits to everyone,
//                           to "blue", to everyone except "blue", emits to
//                           /other, disconnects socket B, emits "end".
// Usage: node redis-emitter.mjs <redisUrl> bytes | rooms <idOnA> <idOnB>
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

const [redisUrl, sequence, idA, idB] = process.argv.slice(2);
const client = createClient({ url: redisUrl });
client.on("error", (err) => console.error("[redis-emitter] redis:", err.message));
await client.connect();
const emitter = new Emitter(client);

if (sequence === "bytes") {
  emitter.emit("plain", "text", 42, 1.5, true, null, { nested: [1, "x"] });
  emitter.to("r1").compress(false).emit("ev", 1, "two");
  emitter.of("chat").to("a").to("b").to("a").emit("ev", Buffer.from([1, 2]));
  emitter.of("/chat").except("muted").volatile.emit("bin", { file: Buffer.from([9, 8, 7]) });
  emitter.in("x").except("y").socketsJoin(["j1", "j2"]);
  emitter.in("x").socketsLeave("j1");
  emitter.disconnectSockets(true);
  emitter.to("r").disconnectSockets();
  emitter.serverSideEmit("ping", Buffer.from([3]), 1.5);
} else if (sequence === "rooms") {
  emitter.in(idA).socketsJoin("blue");
  emitter.emit("news", "everyone");
  emitter.to("blue").emit("news", "blue");
  emitter.except("blue").emit("news", "not blue");
  emitter.of("/other").emit("news", "other");
  emitter.in(idB).disconnectSockets();
  emitter.emit("news", "end");
} else {
  console.error("usage: node redis-emitter.mjs <redisUrl> bytes | rooms <idOnA> <idOnB>");
  process.exit(2);
}
// Replies come in order: once this one is back, every publish above is done.
await client.ping();
await client.quit();
console.log("ok");
