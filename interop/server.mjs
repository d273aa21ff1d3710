// The official socket.io server (npm, pinned) that the Rust client's interop
// tests talk to (crates/runtime-tokio/tests/interop_node_server.rs).
// Usage: node server.mjs <port> [--tls <cert.pem> <key.pem>]   (port 0: any free port)
// Prints "listening <port>" once it accepts connections; exits when stdin
// closes, so a test that dies takes its server with it. SIO_PARSER=msgpack:
// the server speaks socket.io-msgpack-parser. SIO_DEFLATE=1: WebSocket
// messages are compressed (permessage-deflate). SIO_CORS=1: pages of other
// origins may connect, with cookies (cors with credentials), and the
// handshake sets Node's "io" cookie (the browser client's cross-origin test).
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createSecureServer } from "node:https";
import { Server } from "socket.io";
import { parserOptions } from "./parser.mjs";

const [portArg, tlsFlag, certPath, keyPath] = process.argv.slice(2);
const port = Number(portArg ?? 0);
const httpServer =
  tlsFlag === "--tls"
    ? createSecureServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) })
    : createServer();
const io = new Server(httpServer, {
  ...parserOptions,
  // SIO_ALLOW_EIO3=1: socket.io 2.x clients too (client-v2.mjs).
  allowEIO3: process.env.SIO_ALLOW_EIO3 === "1",
  connectionStateRecovery: { maxDisconnectionDuration: 10_000, skipMiddlewares: true },
  // Short, so that a client whose network went away is noticed within 5 s
  // even when no request of it was pending (as in suite::mirror).
  // SIO_PING_TIMEOUT: another pingTimeout, in ms (wasm-client.mjs).
  pingInterval: 2_000,
  pingTimeout: Number(process.env.SIO_PING_TIMEOUT ?? 3_000),
  // SIO_DEFLATE=1: permessage-deflate on, with ws's default threshold
  // (1 KiB). httpCompression is on by default, as in every Node server.
  perMessageDeflate: process.env.SIO_DEFLATE === "1",
  ...(process.env.SIO_CORS === "1" ? { cors: { origin: true, credentials: true }, cookie: true } : {}),
});

// What each client (named by its auth `name`) sent as "seq" events: the
// restart test checks that buffered emits arrive once.
const received = new Map();
// How many times "never" reached the server, per client name (retries).
const nevers = new Map();

const nameOf = (socket) => socket.handshake.auth?.name ?? "anonymous";

io.on("connection", (socket) => {
  const name = nameOf(socket);
  socket.join("clients");
  socket.emit("welcome", {
    id: socket.id,
    engine: socket.conn.id,
    auth: socket.handshake.auth,
    header: socket.handshake.headers["x-test"] ?? null,
    query: socket.handshake.query.q ?? null,
    transport: socket.conn.transport.name,
    recovered: socket.recovered,
    cookie: socket.handshake.headers.cookie ?? null,
  });
  socket.conn.on("upgrade", (transport) => socket.emit("upgraded", transport.name));

  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("echo-ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
  // The server asks the client a question and reports its answer.
  socket.on("ask", async (question) => {
    try {
      const answer = await socket.timeout(3000).emitWithAck("question", question);
      socket.emit("answer", answer);
    } catch (err) {
      socket.emit("answer", `error: ${err.message}`);
    }
  });
  // Binary nested in objects, both ways.
  socket.on("upload", (upload, ack) => {
    const ok = Buffer.isBuffer(upload.file) && upload.meta.parts.every((p) => Buffer.isBuffer(p));
    ack({
      ok,
      name: upload.name,
      size: upload.file.length,
      parts: upload.meta.parts.map((p) => p.length),
      back: { inner: [Buffer.from([1, 2, 3]), upload.meta.parts[0]] },
    });
  });
  socket.on("never", () => nevers.set(name, (nevers.get(name) ?? 0) + 1));
  socket.on("nevers", (ack) => ack(nevers.get(name) ?? 0));
  socket.on("seq", (n) => {
    const list = received.get(name) ?? [];
    list.push(n);
    received.set(name, list);
  });
  socket.on("report", (ack) => ack(received.get(name) ?? []));
  // Sends `data` back as "plain", uncompressed, to the socket and through a
  // broadcast to its own room.
  socket.on("plain-please", (data) => {
    socket.compress(false).emit("plain", data);
    io.compress(false).to(socket.id).emit("plain", data);
  });
  socket.on("disconnect-me", () => socket.disconnect());
  // Sends the client away: every namespace of its connection.
  socket.on("kick-all", () => socket.disconnect(true));
  // Once socket `id` is gone (its network dropped), emits `count` events to
  // the room every client is in, which that client must recover; answers
  // whether it was gone.
  socket.on("emit-missed", async (id, count, ack) => {
    const deadline = Date.now() + 10_000;
    while (io.of("/").sockets.has(id) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (let i = 1; i <= count; i++) io.to("clients").emit("missed", i);
    ack(!io.of("/").sockets.has(id));
  });
  socket.on("engine-id", (ack) => ack(socket.conn.id));
  // Answers after `ms`: a handler that awaits while others run.
  socket.on("sleep", async (ms, ack) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    ack(ms);
  });
  // Emits, for each [event, count] of `plan` in order, `count` events
  // numbered from 1, then answers: floods for the client's listeners.
  socket.on("burst", (plan, ack) => {
    for (const [event, count] of plan) {
      for (let i = 1; i <= count; i++) socket.emit(event, i);
    }
    ack(true);
  });
  // Awaits the client's answer to a question, then answers with it.
  socket.on("ask-then", async (ack) => {
    try {
      ack(await socket.timeout(10_000).emitWithAck("question", "ping"));
    } catch (err) {
      ack(`error: ${err.message}`);
    }
  });
});

// A second namespace on the same connection.
io.of("/b").on("connection", (socket) => {
  socket.on("echo-ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
});

// A namespace behind a middleware: the token must be right.
const admin = io.of("/admin");
admin.use((socket, next) => {
  if (socket.handshake.auth?.token === "secret") return next();
  const err = new Error("unauthorized");
  err.data = { code: 401 };
  next(err);
});
admin.on("connection", (socket) => {
  socket.emit("admin-welcome", { engine: socket.conn.id, auth: socket.handshake.auth });
  socket.on("engine-id", (ack) => ack(socket.conn.id));
  socket.on("kick-all", () => socket.disconnect(true));
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
