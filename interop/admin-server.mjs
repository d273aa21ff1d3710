// The official socket.io server instrumented by the official
// @socket.io/admin-ui (npm, pinned): the reference for the Rust admin-ui
// crate. Its app does exactly what the Rust `admin-server` of crates/suite
// does (crates/suite/src/bin/admin-server.rs), so that admin-ui.mjs can
// compare what the two tell their admin clients.
// Usage: node admin-server.mjs <port> [--readonly] [--production]
//        [--redis <url> --server-id <id>]
// Password: "changeit" for user "admin". Prints "listening <port>" once it
// accepts connections; exits when stdin closes. SIO_PARSER=msgpack: the
// server speaks socket.io-msgpack-parser (parser.mjs).
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { instrument } from "@socket.io/admin-ui";
import { createClient } from "redis";
import { Server } from "socket.io";
import { parserOptions } from "./parser.mjs";

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const port = Number(args[0] ?? 0);
const redisUrl = option("--redis");

const httpServer = createServer();
const io = new Server(httpServer, { ...parserOptions, pingInterval: 25_000, pingTimeout: 20_000 });

if (redisUrl) {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}

instrument(io, {
  auth: {
    type: "basic",
    username: "admin",
    // "changeit" (bcryptjs, cost 10), as in the Admin UI's README.
    password: "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS",
  },
  readonly: args.includes("--readonly"),
  mode: args.includes("--production") ? "production" : "development",
  serverId: option("--server-id"),
});

// The app: the same on the Rust server.
io.use((socket, next) => {
  const name = socket.handshake.auth?.name;
  if (name) socket.data.name = name;
  next();
});
io.on("connection", (socket) => {
  socket.join("lobby");
  socket.on("hello", (value, ack) => {
    socket.emit("hi", value);
    if (typeof ack === "function") ack("done");
  });
  socket.on("rename", (name, ack) => {
    socket.data.name = name;
    if (typeof ack === "function") ack();
  });
});
io.of("/chat").on("connection", () => {});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
