// The official socket.io server (npm, pinned) as one member of a cluster
// joined through Redis by the official @socket.io/redis-adapter (node-redis
// v4 clients), for mixed Rust/Node cluster tests driven by cluster.mjs. Its
// main namespace answers exactly what the Rust test server of
// crates/suite/tests/cluster_adapter.rs answers.
// Usage: node redis-cluster-server.mjs <redisUrl> <serverName> [--sharded | --streams]
// <redisUrl>: one server, or a Redis Cluster as its nodes' URLs joined by
// commas (node-redis's createCluster, --sharded; not in the suite yet: see
// docs/cluster.md, "Not there yet").
// (REDIS_TLS_DIR: TLS with a client certificate, see below)
//   default:   the classic adapter, createAdapter(pub, sub) (PUBLISH/SUBSCRIBE)
//   --sharded: createShardedAdapter(pub, sub) (SPUBLISH/SSUBSCRIBE, Redis >= 7)
//   --streams: @socket.io/redis-streams-adapter's createAdapter(pub) (XADD/XREAD)
// SIO_RECOVERY=1: connection state recovery on (Node's defaults).
// SIO_STREAMS_OPTS: JSON options for the streams adapter (streamCount, …).
// SIO_PARSER=msgpack: the server speaks socket.io-msgpack-parser to clients.
// Listens on 127.0.0.1, on any free port, and prints "listening <port>" once
// it accepts connections and its adapter's subscriptions are in place;
// nothing else goes to stdout (a reader may stop reading after that line),
// diagnostics go to stderr. Exits when stdin closes, so a test that dies
// takes its server with it.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:http";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import calculateSlot from "cluster-key-slot";
import { createClient, createCluster } from "redis";
import { Server } from "socket.io";
import { parserOptions } from "./parser.mjs";

const args = process.argv.slice(2);
const sharded = args.includes("--sharded");
const streams = args.includes("--streams");
// Both are socket.io-adapter's ClusterAdapter: the same barriers hold.
const clusterAdapter = sharded || streams;
const [redisUrl, serverName] = args.filter((arg) => !arg.startsWith("--"));
const log = (...what) => console.error(`[redis-cluster-server ${serverName}]`, ...what);
if (!redisUrl || !serverName) {
  console.error("usage: node redis-cluster-server.mjs <redisUrl> <serverName> [--sharded | --streams]");
  process.exit(2);
}

// REDIS_TLS_DIR: a rediss:// server that wants a client certificate; the
// directory holds ca.pem, client.pem and client.key (crates/suite's TlsFiles).
const tlsDir = process.env.REDIS_TLS_DIR;
const socket = tlsDir
  ? {
      tls: true,
      ca: readFileSync(join(tlsDir, "ca.pem")),
      cert: readFileSync(join(tlsDir, "client.pem")),
      key: readFileSync(join(tlsDir, "client.key")),
    }
  : undefined;
const clusterNodes = redisUrl.includes(",") ? redisUrl.split(",") : undefined;
const pub = clusterNodes
  ? createCluster({ rootNodes: clusterNodes.map((url) => ({ url })) })
  : createClient({ url: redisUrl, socket });
const sub = pub.duplicate();
// node-redis throws unhandled "error" events; it reconnects on its own.
pub.on("error", (err) => log("redis pub:", err.message));
sub.on("error", (err) => log("redis sub:", err.message));
try {
  await Promise.all([pub.connect(), sub.connect()]);
} catch (err) {
  log("cannot connect to redis:", err.message);
  process.exit(1);
}

/**
 * Streams mode: what Redis shows of the streams adapters: subscribers of
 * the main namespace's channel, and connections blocked reading a stream.
 */
async function streamsState() {
  const numsub = streamsOptions.useShardedPubSub ? "SHARDNUMSUB" : "NUMSUB";
  const [, subscribers] = await pub.sendCommand(["PUBSUB", numsub, "socket.io#/#"]);
  const clients = await pub.sendCommand(["CLIENT", "LIST"]);
  const readers = clients.split("\n").filter((line) => / cmd=xread /.test(line)).length;
  return { subscribers: Number(subscribers), readers };
}
const streamsOptions = JSON.parse(process.env.SIO_STREAMS_OPTS || "{}");
const streamsBefore = streams ? await streamsState() : undefined;

const httpServer = createServer();
const io = new Server(httpServer, {
  ...parserOptions,
  adapter: streams
    ? createStreamsAdapter(pub, streamsOptions)
    : sharded
      ? createShardedAdapter(pub, sub)
      : createAdapter(pub, sub),
  ...(process.env.SIO_RECOVERY === "1" ? { connectionStateRecovery: {} } : {}),
});
const main = io.of("/");
// A second namespace, for clients sent away from every namespace.
io.of("/other");

// ---------------------------------------------------------------------------
// Barriers: making an ack mean "done on every server", as the Rust test
// server's acks do.
//
// The classic adapter's addSockets / delSockets / disconnectSockets only
// PUBLISH a request on its request channel and return nothing: every server,
// this one included, applies it when the request comes back from Redis on
// its `sub` connection. The sharded adapter (socket.io-adapter's
// ClusterAdapter) applies it locally once the SPUBLISH is answered, in a
// promise that BroadcastOperator#socketsJoin & co. drop (they return void),
// and the others apply it when they receive the message. Neither offers a
// completion signal, so:
//
// 1. this server: the operation is called on the adapter directly (what
//    io.in(from).socketsJoin(to) does, with the same options) so that the
//    sharded adapter's promise can be awaited; with the classic adapter,
//    `ownEcho()` then PUBLISHes a token on a private channel that `sub` is
//    subscribed to and waits until `sub` receives it. A Redis server delivers
//    the messages one connection publishes to a subscriber in publish order, and
//    node-redis dispatches them in order, synchronously, to the listeners
//    (the adapter's handling of join/leave/disconnect requests is
//    synchronous), so once the token is back the request has been applied
//    here. Exact.
// 2. the other servers: `peersBarrier()` runs a fetchSockets() on a room
//    nobody is in. That request goes out on the same channel as the
//    operation's request (request channel / main sharded channel), after
//    it, from the same connection, and resolves once every other server
//    (PUBSUB NUMSUB / SHARDNUMSUB) has answered: a server that handles its
//    requests in order (both Node adapters do) has applied the operation by
//    then. Exact for peers that handle requests in order. (With the sharded
//    adapter a peer also SSUBSCRIBEs to a room's channel when one of its
//    sockets enters a new room, on its own connection: not covered by the
//    barrier, though always long done by the time a client's next request
//    can make this server publish to that room.)
// ---------------------------------------------------------------------------
const barrierChannel = `redis-cluster-server#barrier#${serverName}#${randomBytes(6).toString("hex")}`;
const echoes = new Map();
let nextToken = 0;

function ownEcho() {
  if (clusterAdapter) return Promise.resolve();
  const token = String(nextToken++);
  const back = new Promise((resolve) => echoes.set(token, resolve));
  pub.publish(barrierChannel, token).catch((err) => log("barrier publish:", err.message));
  return back;
}

// A room no socket is ever in: the fetch answers are empty.
const NOBODY = `redis-cluster-server#nobody#${randomBytes(6).toString("hex")}`;
async function peersBarrier() {
  try {
    await io.in(NOBODY).fetchSockets();
  } catch (err) {
    // A peer that does not answer in time (the adapter's 5 s); the
    // operation itself went out, so the ack still reports it done.
    log("barrier: peers did not all answer:", err.message);
  }
}

/** Runs a cluster-wide adapter operation and waits until it took effect. */
async function settled(operation) {
  await operation;
  await ownEcho();
  await peersBarrier();
}

/**
 * Resolves once this server's sockets got what it broadcast before. The
 * classic adapter delivers to them at once; the sharded adapter only once
 * its SPUBLISH is answered (ClusterAdapter#broadcast awaits it, then
 * delivers, in a promise that emit() drops). Replies on `pub` come in order
 * and the rest is promise continuations: after a later PING's reply and a
 * macrotask, every earlier broadcast has been delivered here.
 */
async function broadcasted() {
  if (!clusterAdapter) return;
  if (clusterNodes) {
    // Each shard's connection answers in order: one PING per master.
    await Promise.all(pub.masters.map(async (node) => (await pub.nodeClient(node)).ping()));
  } else {
    await pub.ping();
  }
  await new Promise((resolve) => setImmediate(resolve));
}

/** Options as a BroadcastOperator (io.in(room)) passes them to the adapter. */
const inRoom = (room) => ({ rooms: new Set([room]), except: new Set(), flags: {} });

/**
 * Sharded mode: a round trip on `sub` (SSUBSCRIBE then SUNSUBSCRIBE of a
 * fresh channel; replies come in order), after which every subscription
 * asked for before on `sub` is active.
 */
async function subRoundTrip() {
  for (const channel of syncChannels()) {
    await sub.sSubscribe(channel, () => {});
    await sub.sUnsubscribe(channel);
  }
}

/**
 * On a Redis Cluster, node-redis opens a shard's subscriber connection at
 * its first SSUBSCRIBE and closes it when its last subscription goes: a
 * room's first subscription on a shard would then wait for a connection,
 * long after the adapter answered a peer that counts on it. One channel
 * per master, subscribed for good, keeps every shard's connection open.
 */
async function holdShardConnections() {
  for (const channel of syncChannels()) {
    await sub.sSubscribe(channel, () => {});
  }
}

/**
 * Fresh channels for a round trip on every connection `sub` subscribes
 * on: one, or on a Redis Cluster one per master (each shard's
 * subscriptions have a connection of their own, answering in order).
 */
function syncChannels() {
  const fresh = () => `redis-cluster-server#sync#${randomBytes(6).toString("hex")}`;
  if (!clusterNodes) return [fresh()];
  const byMaster = new Map();
  while (byMaster.size < pub.masters.length) {
    const channel = fresh();
    const master = pub.slots[calculateSlot(channel)].master;
    if (!byMaster.has(master)) byMaster.set(master, channel);
  }
  return [...byMaster.values()];
}

/**
 * Streams mode: the adapter subscribes and starts reading its stream (from
 * "$") in promises it does not expose; wait until Redis shows both, so that
 * what other servers publish from now on reaches this one.
 */
async function streamsAdapterReady() {
  const deadline = Date.now() + 10000;
  for (;;) {
    const now = await streamsState();
    const readers = streamsOptions.streamCount ?? 1;
    if (now.subscribers > streamsBefore.subscribers && now.readers >= streamsBefore.readers + readers) {
      return;
    }
    if (Date.now() > deadline) throw new Error("the streams adapter did not start within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// The adapter of "/" (made by the Server constructor) has sent its
// (S|P)SUBSCRIBEs on `sub` without exposing their promises; node-redis only
// installs a listener when Redis confirms its subscription, and replies come
// in order: once a later subscription is confirmed, the adapter's are.
if (sharded) {
  if (clusterNodes) await holdShardConnections();
  await subRoundTrip();
} else if (streams) {
  await streamsAdapterReady();
} else {
  await sub.subscribe(barrierChannel, (token) => {
    const resolve = echoes.get(token);
    echoes.delete(token);
    resolve?.();
  });
}

// ---------------------------------------------------------------------------
// The main namespace, as crates/suite/tests/cluster_adapter.rs's `handlers`.
// ---------------------------------------------------------------------------

// Server-side event: the others' serverSideEmit(WithAck) reaches it, never
// this server's own.
io.on("whoami", (text, callback) => callback(`${serverName} got ${text}`));

/** Races `promise` against `ms`, as the Rust server's ack timeout does. */
function within(ms, promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

io.on("connection", (socket) => {
  const name = socket.handshake.auth?.name;
  socket.data = { name: typeof name === "string" ? name : "?", server: serverName };

  /** A handler whose result is the ack; a failure acks { error }. */
  const on = (event, handler) => {
    socket.on(event, async (...params) => {
      const ack = typeof params[params.length - 1] === "function" ? params.pop() : () => {};
      try {
        ack(await handler(...params));
      } catch (err) {
        log(`${event}:`, err.stack || String(err));
        ack({ error: String(err.message || err) });
      }
    });
  };

  on("join", async (room) => {
    socket.join(room);
    // The sharded adapter SSUBSCRIBEs to a room's channel when the room
    // appears here: active before the ack, so broadcasts to it reach us.
    if (sharded) await subRoundTrip();
    return true;
  });

  // Barrier: every connection gets this after what was broadcast before.
  on("flush", async () => {
    io.emit("flush", serverName);
    await broadcasted();
    return true;
  });

  on("shout", async (room, except, text) => {
    socket.to(room).except(except).emit("shout", text);
    await broadcasted(); // before "local-shout", as the Rust server awaits it
    socket.to(room).except(except).local.emit("local-shout", text);
    return true;
  });

  on("vote", async () => {
    const answers = await io.timeout(3000).emitWithAck("vote");
    // The Rust server counts distinct socket ids; one answer per socket here.
    return { votes: answers.map(String).sort(), sockets: answers.length };
  });

  on("fetch", async () => {
    const sockets = await io.fetchSockets();
    // By name, in code-unit order (as the Rust server's string sort; no locale).
    const nameOf = (s) => String(s.data?.name);
    sockets.sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0));
    const entries = sockets.map((s) => ({
      id: s.id,
      rooms: [...s.rooms].sort(),
      data: s.data,
      local: main.sockets.has(s.id),
    }));
    let rooms;
    if (typeof main.adapter.allRooms === "function") {
      // The classic adapter: a cluster-wide request (a Set, or a promise of one).
      rooms = await main.adapter.allRooms();
    } else {
      // The sharded adapter (ClusterAdapter) has no allRooms(); a room
      // exists only while a socket is in it, so the union of every socket's
      // rooms across the cluster is the cluster's set of rooms.
      rooms = new Set(sockets.flatMap((s) => [...s.rooms]));
    }
    return { sockets: entries, rooms: [...rooms].sort() };
  });

  // io.in(from).socketsJoin(to) & co. with their completion awaited (see
  // "Barriers" above).
  on("promote", async (from, to) => {
    await settled(main.adapter.addSockets(inRoom(from), [to]));
    return true;
  });

  on("demote", async (room) => {
    await settled(main.adapter.delSockets(inRoom(room), [room]));
    return true;
  });

  on("news", async (room, text) => {
    io.to(room).emit("news", text);
    await broadcasted();
    return true;
  });

  on("kick", async (room) => {
    await settled(main.adapter.disconnectSockets(inRoom(room), false));
    return true;
  });

  on("send-away", async (room) => {
    await settled(main.adapter.disconnectSockets(inRoom(room), true));
    return true;
  });

  on("ask-servers", async (text) => {
    // serverSideEmitWithAck has no per-call timeout in Node (the adapter's
    // 5 s applies); the Rust server waits 2 s.
    const answers = await within(2000, io.serverSideEmitWithAck("whoami", text), "whoami answers");
    const count = await main.adapter.serverCount();
    return { answers, count };
  });
});

httpServer.listen(0, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  // Never hang on the way out (lingering HTTP keep-alive connections, a
  // redis server gone).
  setTimeout(() => process.exit(0), 3000).unref();
  try {
    await io.close();
  } catch (err) {
    log("close:", err.message);
  }
  await Promise.allSettled([pub.quit(), sub.quit()]);
  process.exit(0);
}
process.stdin.on("end", shutdown);
process.stdin.on("close", shutdown);
process.stdin.resume();
