// The Admin UI's view of a cluster: servers joined through Redis (Rust
// servers instrumented by crates/admin-ui, Node's by @socket.io/admin-ui),
// watched from an admin client connected to the first one, with the
// official socket.io-client.
// Usage: node admin-ui-cluster.mjs <serverId>=<url> ... (the first is the
// one the admin logs in to; user "admin", password "changeit").
// The checks:
//  1. a client on each server; the admin then gets `server_stats` from
//     every server, and `all_sockets` lists every client, with its data;
//  2. the admin makes the last server's client join "vip" and emits to
//     "vip": that client gets it, the others do not;
//  3. the admin disconnects the second server's client: it gets "io server
//     disconnect", and the admin is told (`socket_disconnected`);
// Prints "ok" and exits 0 when every check holds; otherwise "FAIL <why>".
import { io } from "socket.io-client";

const servers = process.argv.slice(2).map((arg) => {
  const [id, url] = arg.split("=");
  return { id, url };
});
const deadline = setTimeout(() => fail("timeout"), 30000);

function fail(why) {
  console.log("FAIL " + why);
  process.exit(1);
}

const connect = (url, options) =>
  new Promise((resolve) => {
    const socket = io(url, { reconnection: false, forceNew: true, ...options });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => fail(`${url}: ${e.message}`));
  });

// 1. A client on each server, then the admin.
const clients = [];
for (const [i, server] of servers.entries()) {
  clients.push(await connect(server.url, { auth: { name: `client${i}` } }));
}
const ids = clients.map((client) => client.id);
const admin = io(servers[0].url + "admin", {
  auth: { username: "admin", password: "changeit" },
  reconnection: false,
});
const seen = new Set();
const everyServer = new Promise((resolve) =>
  admin.on("server_stats", (stats) => {
    seen.add(stats.serverId);
    if (servers.every((s) => seen.has(s.id))) resolve();
  }),
);
const [sockets] = await new Promise((resolve) => admin.once("all_sockets", (...args) => resolve(args)));
for (const [i, id] of ids.entries()) {
  const socket = sockets.find((s) => s.id === id);
  if (!socket) fail(`all_sockets lacks ${servers[i].id}'s client: ${JSON.stringify(sockets.map((s) => s.id))}`);
  if (socket.nsp !== "/" || socket.data?.name !== `client${i}` || !socket.rooms.includes("lobby"))
    fail(`all_sockets: ${servers[i].id}'s client is ${JSON.stringify(socket)}`);
  if (typeof socket.clientId !== "string" || typeof socket.transport !== "string")
    fail(`all_sockets: ${servers[i].id}'s client has no clientId or transport: ${JSON.stringify(socket)}`);
}
await Promise.race([
  everyServer,
  new Promise((resolve) => setTimeout(resolve, 6000)).then(() =>
    fail(`server_stats came from ${[...seen].join(", ")} only`),
  ),
]);

// 2. Join and emit across the cluster.
const last = clients.length - 1;
const got = clients.map(() => []);
clients.forEach((client, i) => client.on("announce", (value) => got[i].push(value)));
admin.emit("join", "/", "vip", ids[last]);
await new Promise((resolve) => setTimeout(resolve, 500));
admin.emit("emit", "/", "vip", "announce", "hello vip");
await new Promise((resolve) => setTimeout(resolve, 500));
for (const [i, values] of got.entries()) {
  const expected = i === last ? ["hello vip"] : [];
  if (JSON.stringify(values) !== JSON.stringify(expected))
    fail(`${servers[i].id}'s client got ${JSON.stringify(values)}`);
}

// 3. Disconnect the second server's client.
const victim = Math.min(1, last);
const told = new Promise((resolve) =>
  admin.on("socket_disconnected", (nsp, id, reason) => {
    if (id === ids[victim]) resolve(reason);
  }),
);
const left = new Promise((resolve) => clients[victim].once("disconnect", resolve));
admin.emit("_disconnect", "/", false, ids[victim]);
const reason = await left;
if (reason !== "io server disconnect") fail(`the disconnected client saw ${reason}`);
const toldReason = await told;
if (toldReason !== "server namespace disconnect") fail(`the admin was told ${toldReason}`);
for (const [i, client] of clients.entries()) {
  if (i !== victim && !client.connected) fail(`${servers[i].id}'s client was disconnected too`);
}

clients.forEach((client) => client.close());
admin.close();
clearTimeout(deadline);
console.log("ok");
process.exit(0);
