// Drives official socket.io-client instances against two servers of one
// cluster (crates/runtime-tokio/tests/cluster_adapter.rs).
// Usage: node cluster.mjs <urlA> <urlB> <scenario> <polling|websocket>
// Prints "ok" and exits 0 when the scenario's checks hold; otherwise prints
// "FAIL <why>" and exits 1. Every scenario is bounded by a timeout.
import { Manager } from "socket.io-client";
import { parserOptions } from "./parser.mjs";
import { deadline, expectEqual, fail } from "./check.mjs";

const [urlA, urlB, scenario, transport] = process.argv.slice(2);
const options = { ...parserOptions, transports: [transport], upgrade: false, reconnection: false, timeout: 5000 };

const done = deadline(`${scenario} over ${transport}`);

/** A connected client on a connection of its own, named in its auth. */
async function client(url, name) {
  const socket = new Manager(url, options).socket("/", { auth: { name } });
  socket.on("connect_error", (err) => fail(`${name}: connect_error ${err.message}`));
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.name = name;
  return socket;
}
const ask = (socket, event, ...args) => socket.timeout(3000).emitWithAck(event, ...args);

/** Clients a<n> on A and b<n> on B, each joined to the rooms listed. */
async function clients(onA, onB) {
  const all = await Promise.all([
    ...onA.map((_, i) => client(urlA, `a${i + 1}`)),
    ...onB.map((_, i) => client(urlB, `b${i + 1}`)),
  ]);
  const rooms = [...onA, ...onB];
  await Promise.all(all.map((s, i) => Promise.all(rooms[i].map((room) => ask(s, "join", room)))));
  return all;
}

/** Records, per client, the events named (as "event:arg"). */
function record(sockets, events) {
  const got = Object.fromEntries(sockets.map((s) => [s.name, []]));
  for (const s of sockets) {
    for (const event of events) s.on(event, (arg) => got[s.name].push(`${event}:${arg}`));
  }
  return got;
}

/** Barrier: `sender`'s server broadcasts "flush" cluster-wide; once each
 * client has it, everything broadcast before has reached it too (a
 * connection's packets stay in order), so an absence is final. */
async function flush(sender, sockets) {
  const missing = new Set(sockets.map((s) => s.name));
  const all = Promise.all(sockets.map((s) => new Promise((resolve) => s.once("flush", () => {
    missing.delete(s.name);
    resolve();
  }))));
  const late = setTimeout(() => fail(`flush did not reach ${[...missing]}`), 3000);
  await ask(sender, "flush");
  await all;
  clearTimeout(late);
}

const scenarios = {
  // A handler on A broadcasts to a room, minus a room, sender excluded;
  // then the same with the `local` flag (A's sockets only).
  async shout() {
    const all = await clients([["red"], ["red"], ["red", "muted"], ["blue"]], [["red"], ["red", "muted"], ["blue"]]);
    const got = record(all, ["shout", "local-shout"]);
    await ask(all[0], "shout", "red", "muted", "hi");
    await flush(all[0], all);
    expectEqual(got, {
      a1: [], a2: ["shout:hi", "local-shout:hi"], a3: [], a4: [],
      b1: ["shout:hi"], b2: [], b3: [],
    }, "deliveries");
    done();
  },

  // A broadcast with acks from A collects one answer per client, both servers.
  async vote() {
    const all = await clients([[], []], [[], []]);
    for (const s of all) s.on("vote", (callback) => callback(s.name));
    expectEqual(await ask(all[0], "vote"), { votes: ["a1", "a2", "b1", "b2"], sockets: 4 }, "votes");
    done();
  },

  // fetchSockets and the rooms from A see both servers' sockets.
  async fetch() {
    const [a1, b1, b2] = await clients([["red"]], [["blue"], ["blue", "green"]]);
    const entry = (s, server, rooms, local) => ({ id: s.id, rooms: [s.id, ...rooms].sort(), data: { name: s.name, server }, local });
    const { sockets, rooms } = await ask(a1, "fetch");
    expectEqual(sockets, [entry(a1, "A", ["red"], true), entry(b1, "B", ["blue"], false), entry(b2, "B", ["blue", "green"], false)], "sockets");
    expectEqual(rooms, [a1.id, b1.id, b2.id, "blue", "green", "red"].sort(), "all rooms");
    done();
  },

  // socketsJoin from A puts a client of B in a room a broadcast then
  // reaches; socketsLeave takes it out again.
  async join() {
    const all = await clients([[]], [["blue"], []]);
    const got = record(all, ["news"]);
    await ask(all[0], "promote", "blue", "vip");
    await ask(all[0], "news", "vip", "1");
    await ask(all[0], "demote", "vip");
    await ask(all[0], "news", "vip", "2");
    await flush(all[0], all);
    expectEqual(got, { a1: [], b1: ["news:1"], b2: [] }, "news");
    done();
  },

  // disconnectSockets from A disconnects a client of B, not its neighbour.
  async kick() {
    const [a1, b1, b2] = await clients([[]], [["blue"], []]);
    const reason = new Promise((resolve) => b1.once("disconnect", resolve));
    b2.on("disconnect", (why) => fail(`b2 disconnected: ${why}`));
    await ask(a1, "kick", "blue");
    expectEqual(await reason, "io server disconnect", "b1's disconnect reason");
    await flush(a1, [a1, b2]);
    expectEqual([b1.connected, b2.connected], [false, true], "connected");
    done();
  },

  // disconnectSockets(true) from A sends a client of B away: every
  // namespace of its connection gets "io server disconnect"; its neighbour
  // stays.
  async sendAway() {
    const [a1, b1, b2] = await clients([[]], [["blue"], []]);
    const other = b1.io.socket("/other");
    await new Promise((resolve) => other.once("connect", resolve));
    const reasons = Promise.all([b1, other].map((s) => new Promise((resolve) => s.once("disconnect", resolve))));
    b2.on("disconnect", (why) => fail(`b2 disconnected: ${why}`));
    await ask(a1, "send-away", "blue");
    expectEqual(await reasons, ["io server disconnect", "io server disconnect"], "b1's disconnect reasons");
    await flush(a1, [a1, b2]);
    expectEqual([b1.connected, other.connected, b2.connected], [false, false, true], "connected");
    done();
  },

  // serverSideEmitWithAck from A: B answers (A's handler does not run, as
  // the test checks); the cluster has two servers.
  async servers() {
    const [a1] = await clients([[]], []);
    expectEqual(await ask(a1, "ask-servers", "ping"), { answers: ["B got ping"], count: 2 }, "server-side answers");
    done();
  },
};

const run = scenarios[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
run().catch((err) => fail(err.stack || String(err)));
