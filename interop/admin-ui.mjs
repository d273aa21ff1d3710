// What a server instrumented for the official Admin UI tells its admin
// clients, for one scenario, driven with the official socket.io-client (the
// client the UI itself bundles): run against Node's instrumented server
// (admin-server.mjs) and against ours, and compared by
// crates/suite/tests/admin_ui.rs.
// Usage: node admin-ui.mjs <serverUrl> [--readonly | --production]
// The scenario (user "admin", password "changeit"):
//  1. a wrong password is refused with "invalid credentials";
//  2. the admin logs in: `session`, `config`, `all_sockets`, `server_stats`;
//  3. alice connects to / (polling, then upgrades), bob to /chat over
//     WebSocket; alice says hello (an ack and an answer) and is renamed
//     (her socket's data changes);
//  4. the admin makes alice join "vip", emits "announce" to "vip" (with a
//     binary argument), makes alice leave "lobby", disconnects her;
//  5. bob leaves; a second admin comes back with the session id alone;
//  6. the next `server_stats` counts what the engine did.
// (--readonly / --production: the same, but the admin's commands must have
// no effect / there are no socket, room or event notices.)
// Prints one line: the admin's notices, normalized (ids, dates, counts that
// vary from run to run replaced), as JSON; or "FAIL <why>" and exits 1.
import { io as connect } from "socket.io-client";
import { parserOptions } from "./parser.mjs";

// Every client speaks the run's parser (SIO_PARSER=msgpack: the UI's
// "MessagePack parser" option).
const io = (url, options) => connect(url, { ...parserOptions, ...options });

const [url, flag] = process.argv.slice(2);
const readonly = flag === "--readonly";
const production = flag === "--production";
const deadline = setTimeout(() => fail("timeout"), 15000);

function fail(why) {
  console.log("FAIL " + why);
  process.exit(1);
}

const until = (socket, event, what, test = () => true) =>
  new Promise((resolve) => {
    const timer = setTimeout(() => fail(`no ${what}`), 5000);
    const listener = (...args) => {
      if (!test(...args)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(args);
    };
    socket.on(event, listener);
  });
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// 1. A wrong password.
const intruder = io(url + "admin", {
  auth: { username: "admin", password: "wrong" },
  reconnection: false,
});
const [refusal] = await until(intruder, "connect_error", "refusal of a wrong password");
if (refusal.message !== "invalid credentials") fail(`refusal: ${refusal.message}`);
intruder.close();

// 2. The admin, recording every notice.
const notices = [];
const admin = io(url + "admin", {
  auth: { username: "admin", password: "changeit" },
  reconnection: false,
});
admin.onAny((event, ...args) => notices.push([event, ...args]));
// They may come in one batch: listen to all of them at once.
const login = [
  until(admin, "session", "session id"),
  until(admin, "config", "config"),
  until(admin, "server_stats", "first server_stats"),
];
if (!production) login.push(until(admin, "all_sockets", "all_sockets"));
const [[sessionId]] = await Promise.all(login);
// Ids by role, for the normalization (a socket forgets its id once gone).
const names = new Map([[admin.id, "<admin>"]]);

// 3. Two clients.
const alice = io(url, { auth: { name: "alice" }, reconnection: false });
await until(alice, "connect", "alice's connection");
names.set(alice.id, "<alice>");
if (alice.io.engine.transport.name !== "websocket") {
  await new Promise((resolve) => alice.io.engine.once("upgrade", resolve));
}
// A connection of its own (not alice's, multiplexed).
const bob = io(url + "chat", { transports: ["websocket"], reconnection: false, forceNew: true });
await until(bob, "connect", "bob's connection");
names.set(bob.id, "<bob>");
const answer = until(alice, "hi", "the answer to hello");
const ack = await alice.timeout(3000).emitWithAck("hello", "world");
if (ack !== "done") fail(`hello's ack: ${ack}`);
await answer;
// A change of her data, after she connected.
await alice.timeout(3000).emitWithAck("rename", "alicia");

// 4. The admin's commands on alice (the UI passes a socket id as filter).
const announced = [];
alice.on("announce", (...args) => announced.push(args));
const gone = until(alice, "disconnect", "alice's disconnection");
const settle = () => pause(300);
admin.emit("join", "/", "vip", alice.id);
await settle();
admin.emit("emit", "/", "vip", "announce", 1, Buffer.from([1, 2, 3]));
await settle();
admin.emit("leave", "/", "lobby", alice.id);
await settle();
admin.emit("_disconnect", "/", false, alice.id);
if (readonly) {
  await settle();
  if (!alice.connected || announced.length !== 0) fail("a read-only admin changed something");
  alice.close();
} else {
  const [reason] = await gone;
  if (reason !== "io server disconnect") fail(`alice left for ${reason}`);
  if (announced.length !== 1 || announced[0][0] !== 1 || !Buffer.from(announced[0][1]).equals(Buffer.from([1, 2, 3])))
    fail(`announce: ${JSON.stringify(announced)}`);
}

// 5. Bob leaves; an admin comes back with its session id.
bob.close();
await settle();
const again = io(url + "admin", { auth: { sessionId }, reconnection: false });
await until(again, "connect", "a login with the session id");
names.set(again.id, "<admin2>");
if (again.io.engine.transport.name !== "websocket") {
  await new Promise((resolve) => again.io.engine.once("upgrade", resolve));
}
// Its upgrade reaches the admin before it goes.
await settle();
again.close();

// 6. The next stats count this run's traffic.
const [stats] = await until(admin, "server_stats", "stats with traffic", (s) =>
  s.aggregatedEvents.some((e) => e.type === "rawDisconnection"),
);
admin.close();
clearTimeout(deadline);

// Normalization: ids by role, dates, and numbers that vary from run to run.
const name = (value) => names.get(value) ?? value;
// A date comes as JSON's ISO string, or (msgpack) as a Date.
const isDate = (value) =>
  value instanceof Date ||
  (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(value));
const shapeOfHandshake = (handshake) => ({
  keys: Object.keys(handshake).sort(),
  address: handshake.address,
  query: Object.keys(handshake.query ?? {}).sort(),
  url: typeof handshake.url === "string" && handshake.url.startsWith("/socket.io/?"),
  issued: typeof handshake.issued,
  time: /GMT[+-]\d{4}/.test(handshake.time ?? ""),
  secure: handshake.secure,
  xdomain: handshake.xdomain,
  headers: typeof handshake.headers,
});
const socketShape = (socket) => ({
  ...socket,
  transport: finalTransport(socket),
  id: name(socket.id),
  // The connection's id, cut to 12 characters: one per client here.
  clientId: typeof socket.clientId === "string" && socket.clientId.length === 12 ? "<12 chars>" : socket.clientId,
  handshake: shapeOfHandshake(socket.handshake),
  rooms: socket.rooms.map(name).sort(),
});
const normal = (value) => {
  if (isDate(value)) return "<date>";
  if (Array.isArray(value)) return value.map(normal);
  if (value && typeof value === "object" && value._placeholder) return value;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normal(v)]));
  }
  return name(value);
};
// A socket's transport when it connected depends on timing (a client may
// upgrade while a slow middleware, bcrypt, holds its CONNECT): each
// socket's transport is reported as its last one, and the upgrade notices
// are checked here, then left out.
const transports = new Map();
for (const [event, info] of notices) {
  if ((event === "socket_connected" || event === "socket_updated") && info.transport) {
    const story = transports.get(info.id) ?? [];
    story.push(info.transport);
    transports.set(info.id, story);
  }
}
for (const [id, story] of transports) {
  const upgrades = story.slice(1);
  if (upgrades.some((t) => t !== "websocket") || upgrades.length > 1)
    fail(`the transports of ${name(id)} were told as ${story.join(", ")}`);
}
const finalTransport = (socket) => {
  const story = transports.get(socket.id);
  return story ? story[story.length - 1] : socket.transport;
};
const kept = notices.filter(([event, info]) => !(event === "socket_updated" && info.transport));
const out = kept.map(([event, ...args]) => {
  switch (event) {
    case "session":
      return [event, typeof args[0] === "string" && args[0].length === 16];
    case "server_stats": {
      const [s] = args;
      return [
        event,
        {
          keys: Object.keys(s).sort(),
          namespaces: s.namespaces.map((n) => n.name).sort(),
          types: [...new Set(s.aggregatedEvents.map((e) => e.type + (e.subType ? `:${e.subType}` : "")))].sort(),
        },
      ];
    }
    case "all_sockets":
      return [event, args[0].map(socketShape).sort((a, b) => (a.id < b.id ? -1 : 1))];
    case "socket_connected":
      return [event, socketShape(args[0]), normal(args[1])];
    default:
      return [event, ...normal(args)];
  }
});
// server_stats come every two seconds: where they fall among the other
// notices depends on timing, so they are compared apart.
const stats_ = out.filter(([event]) => event === "server_stats");
const rest = out.filter(([event]) => event !== "server_stats");
const last = stats_[stats_.length - 1][1];
const final = {
  keys: Object.keys(stats).sort(),
  namespaces: stats.namespaces.map((n) => `${n.name}=${n.socketsCount}`).sort(),
  // The last stats saw alice's and bob's connections and closes, and
  // messages both ways.
  saw: ["rawConnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"].filter((type) =>
    stats.aggregatedEvents.some((e) => e.type === type && e.count > 0),
  ),
};
console.log(JSON.stringify({ notices: rest, stats: last, final }));
process.exit(0);
