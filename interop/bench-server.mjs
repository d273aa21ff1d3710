// The official socket.io server (npm, pinned) serving the benchmark events
// (crates/bench): "echo" emits the argument back, "echo_ack" acks with it,
// "broadcast" emits it to every socket, sender included. Default options,
// or with --deflate permessage-deflate on with threshold 0 (every message
// compressed), --deflate-lean the same without context takeover, for the
// compression scenarios.
// Usage: node bench-server.mjs <port> [--deflate|--deflate-lean]   (port 0: any free port)
// Prints "listening <port>" once it accepts connections; exits when stdin
// closes, so the benchmark runner never leaves it behind.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 3000);
const httpServer = createServer();
const flag = process.argv[3];
const perMessageDeflate =
  flag === "--deflate"
    ? { threshold: 0 }
    : flag === "--deflate-lean"
      ? { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true }
      : false;
const io = new Server(httpServer, { perMessageDeflate });

io.on("connection", (socket) => {
  socket.on("echo", (value) => socket.emit("echo", value));
  socket.on("echo_ack", (value, ack) => ack(value));
  socket.on("broadcast", (value) => io.emit("broadcast", value));
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();
