// Drives the official socket.io-client against a server under test.
// Usage: node client.mjs <url> <scenario> <polling|websocket|upgrade>
// Prints "ok" and exits 0 when the scenario's checks hold; otherwise prints
// "FAIL <why>" and exits 1. Every scenario is bounded by a timeout.
// SIO_PARSER=msgpack: the client speaks socket.io-msgpack-parser.
import { Manager } from "socket.io-client";
import { deadline, expectEqual, fail } from "./check.mjs";
import { parserOptions } from "./parser.mjs";

const [url, scenario, transport] = process.argv.slice(2);
const options = {
  ...parserOptions,
  transports: transport === "websocket" ? ["websocket"] : transport === "polling" ? ["polling"] : ["polling", "websocket"],
  upgrade: transport === "upgrade",
  reconnection: false,
  timeout: 5000,
};

const done = deadline(`${scenario} over ${transport}`);

const manager = new Manager(url, options);

/** Resolves once the socket is connected (and, for "upgrade", on WebSocket). */
function connected(socket) {
  return new Promise((resolve) => {
    socket.on("connect_error", (err) => fail(`connect_error on ${socket.nsp}: ${err.message}`));
    socket.on("connect", () => {
      const engine = manager.engine;
      if (transport !== "upgrade" || engine.transport.name === "websocket") return resolve();
      engine.once("upgrade", () => resolve());
    });
  });
}

const scenarios = {
  // JSON and nested binary, both ways.
  async echo() {
    const socket = manager.socket("/");
    await connected(socket);
    const sent = { text: "héllo", n: [1, 2.5, null, true], nested: { file: Buffer.from([1, 2, 3]), parts: [Buffer.from([]), Buffer.from([255])] } };
    const echoed = await new Promise((resolve) => {
      socket.once("echo", (...args) => resolve(args));
      socket.emit("echo", sent, "second", Buffer.from("raw"));
    });
    expectEqual(echoed, [sent, "second", Buffer.from("raw")], "echo");
    if (transport === "upgrade") expectEqual(manager.engine.transport.name, "websocket", "transport after upgrade");
    done();
  },

  // The server answers the client's acks.
  async ack() {
    const socket = manager.socket("/");
    await connected(socket);
    const sum = await socket.timeout(2000).emitWithAck("sum", 20, 22);
    expectEqual(sum, 42, "sum ack");
    const echoed = await socket.timeout(2000).emitWithAck("echo-ack", { a: [Buffer.from([7])] });
    expectEqual(echoed, { a: [Buffer.from([7])] }, "binary ack");
    done();
  },

  // Two namespaces over one connection.
  async namespaces() {
    const main = manager.socket("/");
    const chat = manager.socket("/chat", { auth: { user: "ann" } });
    const welcomes = Promise.all(
      [main, chat].map((s) => new Promise((resolve) => s.once("welcome", resolve))),
    );
    await Promise.all([connected(main), connected(chat)]);
    expectEqual(await welcomes, [{ nsp: "/", auth: {} }, { nsp: "/chat", auth: { user: "ann" } }], "welcomes");
    if (main.io !== chat.io) fail("namespaces did not share a manager");
    done();
  },

  // Unknown namespaces are refused as Node refuses them.
  async invalidNamespace() {
    const socket = manager.socket("/nope");
    socket.on("connect", () => fail("connected to an unknown namespace"));
    const err = await new Promise((resolve) => socket.once("connect_error", resolve));
    expectEqual(err.message, "Invalid namespace", "connect_error message");
    done();
  },
};

// Rooms and broadcasts across three clients (three connections).
scenarios.rooms = async () => {
  const clients = ["a", "b", "c"].map(() => new Manager(url, options).socket("/"));
  await Promise.all(clients.map(connected));
  const [a, b, c] = clients;
  const got = { a: [], b: [], c: [] };
  for (const [name, socket] of Object.entries({ a, b, c })) {
    socket.on("shout", (text) => got[name].push(`shout:${text}`));
    socket.on("announce", (text) => got[name].push(`announce:${text}`));
  }
  expectEqual(await a.timeout(2000).emitWithAck("join", "red"), [a.id, "red"], "a's rooms");
  await b.timeout(2000).emitWithAck("join", "red");
  await c.timeout(2000).emitWithAck("join", "blue");
  // To a room, sender excluded; then to everyone but a room.
  a.emit("shout", "red", "hi reds");
  a.emit("announce", "blue", "not for blues");
  await new Promise((resolve) => setTimeout(resolve, 300));
  expectEqual(got, { a: ["announce:not for blues"], b: ["shout:hi reds", "announce:not for blues"], c: [] }, "deliveries");
  done();
};

// The server disconnects the socket: the client sees "io server disconnect".
scenarios.serverDisconnect = async () => {
  const socket = manager.socket("/");
  await connected(socket);
  const reason = await new Promise((resolve) => {
    socket.once("disconnect", resolve);
    socket.emit("kick-me");
  });
  expectEqual(reason, "io server disconnect", "disconnect reason");
  done();
};

// The client leaves: the server sees "client namespace disconnect".
scenarios.clientDisconnect = async () => {
  const socket = manager.socket("/");
  await connected(socket);
  socket.disconnect();
  await new Promise((resolve) => setTimeout(resolve, 100));
  done();
};

// A middleware refuses a bad token with message and data; a good one passes.
scenarios.middleware = async () => {
  const refused = manager.socket("/private", { auth: { token: "wrong" } });
  refused.on("connect", () => fail("connected with a bad token"));
  const err = await new Promise((resolve) => refused.once("connect_error", resolve));
  expectEqual([err.message, err.data], ["unauthorized", { reason: "bad token" }], "connect_error");
  const second = new Manager(url, options).socket("/private", { auth: { token: "secret" } });
  second.on("connect_error", (e) => fail(`good token refused: ${e.message}`));
  await new Promise((resolve) => second.once("connect", resolve));
  done();
};

// The server asks, the client answers (and once ignores: the server times out).
scenarios.serverAck = async () => {
  const socket = manager.socket("/");
  socket.on("question", (n, callback) => callback(n * 2));
  socket.on("silent-question", () => {});
  await connected(socket);
  const answers = [];
  const twoAnswers = new Promise((resolve) => {
    socket.on("answer", (a) => {
      answers.push(a);
      if (answers.length === 2) resolve();
    });
  });
  socket.emit("ask-me", 21);
  socket.emit("ask-me-silently");
  await twoAnswers;
  expectEqual(answers, [[42], "timeout"], "answers");
  done();
};

// Several listeners of one event (the first ack wins) and onAny on the server.
scenarios.listeners = async () => {
  const socket = manager.socket("/");
  await connected(socket);
  expectEqual(await socket.timeout(2000).emitWithAck("multi", "x"), "first:x", "first listener's ack");
  expectEqual(await socket.timeout(2000).emitWithAck("seen"), ["multi", "seen"], "events seen by onAny");
  done();
};

// The server sees the handshake's query, headers and the client's address.
scenarios.handshake = async () => {
  const m = new Manager(url, { ...options, query: { color: "blue" }, extraHeaders: { "x-test": "yes" } });
  const socket = m.socket("/handshake");
  const seen = new Promise((resolve) => socket.once("handshake", resolve));
  await connected(socket);
  expectEqual(await seen, { color: "blue", header: "yes", loopback: true }, "handshake");
  done();
};

// Connection state recovery: drop the connection, miss events, come back to
// exactly the missed ones, in order, with socket.recovered set.
scenarios.recovery = async () => {
  const m = new Manager(url, { ...options, reconnection: true, reconnectionDelay: 600, reconnectionDelayMax: 600, randomizationFactor: 0 });
  const socket = m.socket("/");
  await connected(socket);
  if (socket.recovered) fail("recovered on the first connection");
  const firstId = socket.id;
  const ticks = [];
  let wake = () => {};
  socket.on("tick", (n) => { ticks.push(n); wake(); });
  const until = (count) => new Promise((resolve) => {
    wake = () => { if (ticks.length >= count) resolve(); };
    wake();
  });
  socket.emit("start");
  await until(1);
  const restoredData = new Promise((resolve) => socket.once("restored-data", resolve));
  // A network failure, as far as the client can tell.
  socket.io.engine.close();
  await new Promise((resolve) => socket.once("connect", resolve));
  if (!socket.recovered) fail("not recovered after reconnecting");
  expectEqual(await restoredData, { visits: 1 }, "socket.data after recovery");
  expectEqual(socket.id, firstId, "socket id after recovery");
  await until(3);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expectEqual(ticks, [1, 2, 3], "ticks");
  done();
};

// Server-side bulk operations on a selection of sockets.
scenarios.bulk = async () => {
  const [a, b] = [0, 1].map(() => new Manager(url, options).socket("/bulk"));
  await Promise.all([a, b].map(connected));
  const seen = [];
  b.on("to-all", (n) => seen.push(n));
  const reasons = Promise.all([a, b].map((s) => new Promise((resolve) => s.once("disconnect", resolve))));
  // fetchSockets sees both; socketsJoin puts both in "all"; a broadcast to
  // "all" reaches b; disconnectSockets ends both.
  expectEqual(await a.timeout(2000).emitWithAck("bulk"), 2, "fetched sockets");
  expectEqual(await reasons, ["io server disconnect", "io server disconnect"], "disconnect reasons");
  expectEqual(seen, [2], "broadcast to the joined room");
  done();
};

// The server restarts under the client: it reconnects on its own and the
// new server greets it.
scenarios.restart = async () => {
  const m = new Manager(url, { ...options, reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 400 });
  const socket = m.socket("/");
  const greetings = [];
  let wake = () => {};
  socket.on("generation", (n) => { greetings.push(n); wake(); });
  const until = (count) => new Promise((resolve) => {
    wake = () => { if (greetings.length >= count) resolve(); };
    wake();
  });
  // Refused attempts while the server is down raise connect_error: expected.
  await new Promise((resolve) => socket.once("connect", resolve));
  await until(1);
  const reconnected = new Promise((resolve) => m.once("reconnect", resolve));
  socket.emit("restart-please");
  await reconnected;
  await until(2);
  if (greetings[1] <= greetings[0]) fail(`greetings ${JSON.stringify(greetings)} do not come from a new server`);
  done();
};

// A broadcast that asks every client for an ack; the server collects them.
scenarios.vote = async () => {
  const [a, b] = [0, 1].map(() => new Manager(url, options).socket("/vote"));
  a.on("vote", (callback) => callback("a"));
  b.on("vote", (callback) => callback("b"));
  await Promise.all([a, b].map(connected));
  const results = new Promise((resolve) => a.once("results", resolve));
  a.emit("start-vote");
  expectEqual(await results, ["a", "b"], "collected acks");
  done();
};

// Typed arguments with binary at depth: the server reads a struct whose
// fields are Bytes and answers with binary; a mistyped event goes to the
// server's error listener, which reports it.
scenarios.typed = async () => {
  const socket = manager.socket("/");
  await connected(socket);
  const upload = { name: "photo", file: Buffer.from([1, 2, 3]), meta: { parts: [Buffer.from([4]), Buffer.from([])] } };
  const answer = await socket.timeout(2000).emitWithAck("upload", upload);
  expectEqual(answer, { name: "photo", size: 3, parts: 2, first: Buffer.from([1, 2, 3]) }, "typed ack");
  const rejected = new Promise((resolve) => socket.once("rejected", resolve));
  socket.emit("upload", "not an object");
  expectEqual((await rejected).startsWith('invalid arguments for "upload"'), true, "error listener");
  done();
};

// A per-event middleware refuses an event: no listener runs, the error
// listener sees the refusal; other events pass.
scenarios.eventMiddleware = async () => {
  const socket = manager.socket("/");
  await connected(socket);
  socket.on("ran", () => fail("a refused event reached its listener"));
  const rejected = new Promise((resolve) => socket.once("rejected", resolve));
  socket.emit("forbidden", 1);
  expectEqual(await rejected, "forbidden event", "refusal");
  expectEqual(await socket.timeout(2000).emitWithAck("sum", 1, 2), 3, "allowed event");
  done();
};

// The server's outgoing listener sees what it sent this socket, emits and
// broadcasts alike; a volatile emit over an open WebSocket arrives.
scenarios.outgoing = async () => {
  const socket = manager.socket("/");
  const welcome = new Promise((resolve) => socket.once("welcome", resolve));
  await connected(socket);
  await welcome;
  await socket.timeout(2000).emitWithAck("join", "loud");
  const volatile = new Promise((resolve) => socket.once("volatile", resolve));
  socket.emit("volatile-please");
  if (transport !== "polling") expectEqual(await volatile, "v", "volatile emit");
  const outgoing = await socket.timeout(2000).emitWithAck("outgoing");
  for (const event of ["welcome", "volatile", "to-loud"]) {
    if (transport === "polling" && event === "volatile") continue;
    if (!outgoing.includes(event)) fail(`outgoing listener missed ${event}: ${JSON.stringify(outgoing)}`);
  }
  done();
};

// Dynamic namespaces: any /workspace-<n> exists on first connection, with
// the parent's middleware and handler; a broadcast on the parent reaches
// every child.
scenarios.dynamic = async () => {
  const one = manager.socket("/workspace-1", { auth: { token: "ok" } });
  const two = new Manager(url, options).socket("/workspace-2", { auth: { token: "ok" } });
  const hellos = Promise.all([one, two].map((s) => new Promise((resolve) => s.once("hello", resolve))));
  await Promise.all([one, two].map(connected));
  expectEqual(await hellos, ["/workspace-1", "/workspace-2"], "hello from each child");
  const everywhere = Promise.all([one, two].map((s) => new Promise((resolve) => s.once("everywhere", resolve))));
  one.emit("to-all-workspaces");
  expectEqual(await everywhere, [2, 2], "parent broadcast");
  const refused = manager.socket("/workspace-3", { auth: { token: "bad" } });
  const err = await new Promise((resolve) => refused.once("connect_error", resolve));
  expectEqual(err.message, "parent middleware says no", "parent middleware");
  done();
};

// 2,000 emits with acks made before the connection opens wait in the
// client's buffer and go out together, in one POST over polling, once it
// connects (servers: server.mjs and suite::mirror): every ack comes back,
// in order. A POST of more than ~1,090 packets once wedged our server.
scenarios.burst = async () => {
  const socket = manager.socket("/", { auth: { name: "burst" } });
  const count = 2000;
  const acks = [];
  const all = new Promise((resolve) => {
    for (let i = 0; i < count; i++) {
      socket.emit("echo-ack", i, (n) => {
        acks.push(n);
        if (acks.length === count) resolve();
      });
    }
  });
  await connected(socket);
  await all;
  expectEqual(acks, [...Array(count).keys()], "acks, in order");
  done();
};

// The server sends the client away (`socket.disconnect(true)` in Node,
// `close_connection()` in ours; servers: server.mjs and suite::mirror):
// every namespace gets "io server disconnect", the client does not
// reconnect by itself, and coming back with its old pid is a new session
// that runs the middlewares.
scenarios.kick = async () => {
  const m = new Manager(url, { ...options, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 100 });
  const main = m.socket("/", { auth: { name: "kick" } });
  const admin = m.socket("/admin", { auth: { token: "secret" } });
  // The first events carry offsets, so the client has a pid and an offset
  // to come back with.
  const welcomes = Promise.all([
    new Promise((resolve) => main.once("welcome", resolve)),
    new Promise((resolve) => admin.once("admin-welcome", resolve)),
  ]);
  await Promise.all([main, admin].map((s) => new Promise((resolve) => s.once("connect", resolve))));
  await welcomes;
  const firstId = main.id;
  if (!main._pid || !admin._pid) fail("connection state recovery is off on the server");
  let attempts = 0;
  m.on("reconnect_attempt", () => attempts++);
  const reasons = Promise.all([main, admin].map((s) => new Promise((resolve) => s.once("disconnect", resolve))));
  main.emit("kick-all");
  expectEqual(await reasons, ["io server disconnect", "io server disconnect"], "disconnect reasons");
  // Stays away: several reconnection delays pass without an attempt.
  await new Promise((resolve) => setTimeout(resolve, 600));
  expectEqual(attempts, 0, "reconnection attempts after being sent away");
  // Back with the old pid and a token the middleware refuses: refused, so
  // the middleware ran (a recovered session would skip it).
  admin.auth = { token: "wrong" };
  const refused = new Promise((resolve) => admin.once("connect_error", resolve));
  admin.connect();
  expectEqual((await refused).message, "unauthorized", "the middleware on the way back");
  main.connect();
  await new Promise((resolve) => main.once("connect", resolve));
  if (main.recovered) fail("the session was recovered after being sent away");
  if (main.id === firstId) fail("the same id after being sent away");
  done();
};

// A handler awaits its client's answer (`emitWithAck`, 10 s timeout) while
// the client, which answers at once, sends 3,000 more events: the answer
// and the handler's own ack come back at once (Node: ~235 ms).
scenarios["awaiting-ack"] = async () => {
  const socket = manager.socket("/");
  socket.on("question", (question, ack) => ack(`answer to ${question}`));
  await connected(socket);
  const started = Date.now();
  const answer = socket.timeout(8000).emitWithAck("ask-then");
  for (let i = 0; i < 3000; i++) socket.emit("noise", i);
  expectEqual(await answer, "answer to ping", "the handler's answer");
  const took = Date.now() - started;
  if (took > 3000) fail(`answered after ${took} ms`);
  done();
};

// A handler awaits for 1 s; meanwhile an event of the same client on `nsp`
// is answered at once (Node: a few ms, on another namespace or the same).
async function slowThenQuick(nsp) {
  const main = manager.socket("/");
  const other = nsp === "/" ? main : manager.socket(nsp);
  await Promise.all([...new Set([main, other])].map(connected));
  const slow = main.timeout(5000).emitWithAck("sleep", 1000);
  const started = Date.now();
  expectEqual(await other.timeout(5000).emitWithAck("echo-ack", "quick"), "quick", "quick answer");
  const took = Date.now() - started;
  if (took > 500) fail(`the quick event on ${nsp} waited ${took} ms for the slow handler`);
  expectEqual(await slow, 1000, "slow answer");
  done();
}
scenarios["slow-other-namespace"] = () => slowThenQuick("/b");
scenarios["slow-same-namespace"] = () => slowThenQuick("/");

// A handler awaits longer than pingInterval + pingTimeout (2 s + 3 s) while
// the client sends 3,000 events: heartbeats go on and nothing disconnects.
scenarios["slow-heartbeat"] = async () => {
  const socket = manager.socket("/");
  await connected(socket);
  let pings = 0;
  manager.engine.on("ping", () => pings++);
  let dropped = null;
  socket.on("disconnect", (reason) => (dropped = reason));
  const slow = socket.timeout(10_000).emitWithAck("sleep", 5500);
  for (let i = 0; i < 3000; i++) socket.emit("noise", i);
  expectEqual(await slow, 5500, "slow answer");
  expectEqual(dropped, null, "disconnect reason");
  if (pings < 2) fail(`${pings} pings in 5.5 s`);
  done();
};

// The client's own listeners, as `client_scenarios::awaiting_listeners`
// runs them with our Rust client: a listener that awaits an ack of its own
// (`echo-ack`) while the server floods 3,000 events is answered at once,
// and a listener that awaits 1 s holds up no later event.
scenarios["awaiting-listeners"] = async () => {
  const socket = manager.socket("/");
  const NOISE = 3000;
  let noises = 0;
  let answered = null;
  let quick = null;
  socket.on("first", async () => {
    expectEqual(await socket.timeout(10_000).emitWithAck("echo-ack", "ping"), "ping", "the ack");
    answered = Date.now();
  });
  socket.on("noise", () => noises++);
  socket.on("slow", () => new Promise((resolve) => setTimeout(resolve, 1000)));
  socket.on("quick", () => (quick = Date.now()));
  await connected(socket);
  let started = Date.now();
  await socket.timeout(5000).emitWithAck("burst", [["first", 1], ["noise", NOISE]]);
  while (noises < NOISE || answered === null) await new Promise((resolve) => setTimeout(resolve, 5));
  if (answered - started > 3000) fail(`answered after ${answered - started} ms`);
  started = Date.now();
  await socket.timeout(5000).emitWithAck("burst", [["slow", 1], ["quick", 1]]);
  while (quick === null) await new Promise((resolve) => setTimeout(resolve, 5));
  if (quick - started > 500) fail(`the quick event waited ${quick - started} ms for the slow listener`);
  done();
};

// Servers started with permessage-deflate on. Over WebSocket the extension
// is negotiated and a compressible 108 KB message goes compressed both ways
// (the socket's byte counters show it), while what the server sends with
// compress(false), to the socket and through a broadcast to its room, goes
// as is (unless SIO_COMPRESS_FALSE=ignored, see below). Over long-polling Node's XMLHttpRequest cannot ask for HTTP
// compression (Accept-Encoding is a forbidden header): the round trips are
// checked, not the bytes.
scenarios.compression = async () => {
  const socket = manager.socket("/");
  await connected(socket);
  const big = "hello compression ".repeat(6000);
  const ws = transport === "polling" ? null : manager.engine.transport.ws;
  if (ws && !ws._extensions["permessage-deflate"]) fail("permessage-deflate was not negotiated");
  const counters = () => (ws ? [ws._socket.bytesRead, ws._socket.bytesWritten] : [0, 0]);
  let [read0, written0] = counters();
  const echoed = await new Promise((resolve) => {
    socket.once("echo", resolve);
    socket.emit("echo", big);
  });
  expectEqual(echoed === big, true, "the echo of the big message");
  let [read, written] = counters();
  if (written - written0 > 10_000) fail(`the client's message took ${written - written0} bytes`);
  if (read - read0 > 10_000) fail(`the server's echo took ${read - read0} bytes`);
  [read0] = counters();
  await new Promise((resolve) => {
    let plains = 0;
    socket.on("plain", (data) => {
      expectEqual(data === big, true, "an uncompressed message");
      if (++plains === 2) resolve();
    });
    socket.emit("plain-please", big);
  });
  [read] = counters();
  // SIO_COMPRESS_FALSE=ignored: Node 4.8's engine.io no longer hands the
  // flag to ws, which compresses every message over its threshold.
  const honored = process.env.SIO_COMPRESS_FALSE !== "ignored";
  if (ws && honored && read - read0 < 2 * big.length) fail(`two uncompressed messages took ${read - read0} bytes`);
  if (ws && !honored && read - read0 > 10_000) fail(`compress(false) now honored: ${read - read0} bytes`);
  done();
};

const run = scenarios[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
run().catch((err) => fail(err.stack || String(err)));
