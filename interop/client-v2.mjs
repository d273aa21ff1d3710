// Drives the last socket.io-client 2.x (npm alias socket.io-client-v2,
// pinned: Engine.IO v3, Socket.IO protocol v4) against a server under test
// that serves such clients (Node's allowEIO3: server.mjs with
// SIO_ALLOW_EIO3=1, or ours with allow_eio3). Same usage and output as
// client.mjs: node client-v2.mjs <url> <scenario> <polling|websocket|upgrade|base64>
// ("base64": long-polling with binary as base64 text, as clients without
// XHR2 do).
import { createRequire } from "node:module";
import { deadline, expectEqual, fail } from "./check.mjs";

const require = createRequire(import.meta.url);
const io = require("socket.io-client-v2");

const [url, scenario, transport] = process.argv.slice(2);
const options = {
  transports: transport === "websocket" ? ["websocket"] : transport === "upgrade" ? ["polling", "websocket"] : ["polling"],
  upgrade: transport === "upgrade",
  forceBase64: transport === "base64",
  reconnection: false,
  timeout: 5000,
  forceNew: true,
};

const done = deadline(`${scenario} over ${transport} (socket.io-client 2.x)`);
// What the scenario waits for, named in the failure if it never comes.
let step = "connecting";
setTimeout(() => fail(`stuck at: ${step}`), 7000);

/** Resolves with the first emit of `event` on `socket`. */
const next = (socket, event) => {
  step = `waiting for ${event}`;
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
};

/** Resolves once connected; fails on a connection error. */
function connected(socket) {
  return new Promise((resolve) => {
    socket.on("connect_error", (err) => fail(`connect_error on ${socket.nsp}: ${err.message ?? err}`));
    socket.on("connect", resolve);
  });
}

/** The ack of `event`, as a promise of its arguments. */
const ask = (socket, event, ...args) =>
  new Promise((resolve, reject) => {
    step = `waiting for the ack of ${event}`;
    const timer = setTimeout(() => reject(new Error(`no ack of ${event}`)), 3000);
    socket.emit(event, ...args, (...answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
  });

const scenarios = {
  // The main namespace without a CONNECT, JSON and nested binary both
  // ways, acks both ways.
  async basics() {
    const socket = io(url, options);
    const welcome = next(socket, "welcome");
    await connected(socket);
    const [hello] = await welcome;
    // A 2.x client's main socket id is the engine's id, on both sides.
    expectEqual(hello.id, hello.engine, "socket id is the engine id");
    expectEqual(socket.id, hello.engine, "client-side socket id");
    expectEqual(hello.auth, {}, "no auth in protocol v4");
    const sent = { text: "héllo 😀", n: [1, 2.5, null, true], nested: { file: Buffer.from([1, 2, 3]), parts: [Buffer.from([]), Buffer.from([255])] } };
    const echo = next(socket, "echo");
    socket.emit("echo", sent, "second", Buffer.from("raw"));
    // With connection state recovery on (both servers), Node appends the
    // event's offset even for a 2.x client, which cannot use it.
    const [echoed0, echoed1, echoed2, offset, ...rest] = await echo;
    expectEqual([echoed0, echoed1, echoed2], [sent, "second", Buffer.from("raw")], "echo");
    expectEqual([typeof offset, rest.length], ["string", 0], "the recovery offset last");
    expectEqual(await ask(socket, "echo-ack", 1, "two", { three: Buffer.from([3]) }), [1, "two", { three: Buffer.from([3]) }], "ack");
    // The server asks; the client answers.
    socket.on("question", (...args) => args.pop()(`${args[0]}!`));
    const answer = next(socket, "answer");
    socket.emit("ask", "why");
    expectEqual((await answer)[0], "why!", "server's ack");
    const [receipt] = await ask(socket, "upload", { name: "f", file: Buffer.alloc(1000, 7), meta: { parts: [Buffer.from([1]), Buffer.from([2, 2])] } });
    expectEqual(receipt, { ok: true, name: "f", size: 1000, parts: [1, 2], back: { inner: [Buffer.from([1, 2, 3]), Buffer.from([1])] } }, "upload");
    if (transport === "upgrade") {
      if (socket.io.engine.transport.name !== "websocket") await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
      expectEqual(await ask(socket, "echo-ack", "after upgrade"), ["after upgrade"], "ack after the upgrade");
    }
    socket.close();
    done();
  },

  // Namespaces with their auth in the query; a middleware's refusal
  // arrives as an `error` event with the error's data.
  async namespaces() {
    const manager = new io.Manager(url, options);
    const main = manager.socket("/");
    await connected(main);
    const admin = manager.socket("/admin", { query: { token: "secret" } });
    const welcome = next(admin, "admin-welcome");
    await connected(admin);
    const [hello] = await welcome;
    expectEqual(hello.auth, { token: "secret" }, "query as auth");
    expectEqual(hello.engine, main.io.engine.id, "one connection");
    const b = manager.socket("/b");
    await connected(b);
    expectEqual(await ask(b, "echo-ack", { x: Buffer.from([9]) }), [{ x: Buffer.from([9]) }], "ack on /b");
    const refused = new io.Manager(url, options).socket("/admin", { query: { token: "wrong" } });
    const [error] = await next(refused, "error");
    expectEqual(error, { code: 401 }, "middleware refusal");
    refused.close();
    main.close();
    done();
  },

  // A broadcast to a room reaches every client; disconnects both ways.
  async rooms() {
    const [a, b] = [io(url, options), io(url, options)];
    await Promise.all([connected(a), connected(b)]);
    const got = [];
    b.on("missed", (n) => got.push(n));
    // No such socket: the server broadcasts at once, to `clients`.
    expectEqual(await ask(a, "emit-missed", "nobody", 3), [true], "broadcast sent");
    const until = Date.now() + 2000;
    while (got.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expectEqual(got, [1, 2, 3], "broadcast received in order");
    const reason = next(b, "disconnect");
    b.emit("disconnect-me");
    expectEqual(await reason, ["io server disconnect"], "server-side disconnect");
    a.close();
    done();
  },
};

const run = scenarios[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
run().catch((err) => fail(err.stack ?? String(err)));
