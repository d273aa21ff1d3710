// The last socket.io 2.x server (npm alias socket.io-v2, pinned: Engine.IO
// v3, Socket.IO protocol v4), for the Rust client's legacy mode
// (crates/suite/tests/client_node_server.rs, socket_io_2_server).
// Usage: node server-v2.mjs <port>   (port 0: any free port)
// Prints "listening <port>" once it accepts connections; exits when stdin
// closes, so a test that dies takes its server with it.
import { createServer } from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const createIo = require("socket.io-v2");

const port = Number(process.argv[2] ?? 0);
const httpServer = createServer();
const io = createIo(httpServer, { pingInterval: 2_000, pingTimeout: 3_000 });

io.on("connection", (socket) => {
  socket.join("clients");
  socket.emit("welcome", {
    id: socket.id,
    engine: socket.conn.id,
    query: socket.handshake.query.q ?? null,
    transport: socket.conn.transport.name,
  });
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("echo-ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
  // The server asks the client a question and reports its answer.
  socket.on("ask", (question) => {
    socket.emit("question", question, (answer) => socket.emit("answer", answer));
  });
  socket.on("shout", (text) => io.to("clients").emit("shout", text));
  socket.on("disconnect-me", () => socket.disconnect());
});

// A namespace behind a middleware: the token of the query must be right.
const admin = io.of("/admin");
admin.use((socket, next) => {
  if (socket.handshake.query.token === "secret") return next();
  const err = new Error("unauthorized");
  err.data = { code: 401 };
  next(err);
});
admin.on("connection", (socket) => {
  socket.emit("admin-welcome", { id: socket.id, engine: socket.conn.id, token: socket.handshake.query.token });
  socket.on("echo-ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
