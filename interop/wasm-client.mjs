// Runs the Rust client, built for the browser (crates/suite-wasm, bound by
// wasm-bindgen), in headless Chromium against a server this script starts:
// every scenario over long-polling, WebSocket and the upgrade.
// Usage: node wasm-client.mjs <pkg dir> <chromium executable> -- <server command…>
// The server command gets "{port}" replaced by its port (0 the first time,
// the same port after a restart); it prints "listening <port>" and exits
// when its standard input closes (interop/server.mjs, mirror-server).
// Prints "ok" and exits 0 when every scenario passed; otherwise
// "FAIL <why>". Each scenario's report goes to standard error.
// SIO_PARSER=msgpack: the server (which inherits it), the control client
// and the Rust client speak socket.io-msgpack-parser (interop/parser.mjs).
//
// The page is served (from <pkg dir>) by a TCP proxy in front of the
// server, so the client connects to "/" on the page's origin and this
// script can cut its network. Some scenarios run again in a module worker
// of the page, where the client has no window. The scenarios ask for what they need
// through window.harness(step):
//   cut / restore   drop every proxied connection and refuse new ones / stop
//   miss <id> <n>   an official Node client asks the server (directly) to
//                   emit n "missed" events once socket <id> is gone
//   hold / release  accept new connections and never answer them / close
//                   those held and proxy again
//   freeze / thaw   stop reading both ways on every proxied connection /
//                   read again
//   stop / start    kill the server (SIGKILL) / start it on the same port
//   server-url      the server's own address: another origin than the page's
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { parserName, parserOptions } from "./parser.mjs";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
const [pkgDir, executablePath] = argv.slice(0, split);
const serverCommand = argv.slice(split + 1);
if (split < 0 || !pkgDir || !executablePath || serverCommand.length === 0) {
  console.log("FAIL usage: node wasm-client.mjs <pkg dir> <chromium> -- <server command…>");
  process.exit(2);
}

const SCENARIOS = [
  "events",
  "namespaces",
  "dynamic-auth",
  "sent-away",
  "acks",
  "awaiting",
  "backpressure",
  "recovery",
  "restart",
  "silent",
  "cross-origin",
];
// Those that need no harness step, run again in a module worker.
const WORKER_SCENARIOS = ["events", "namespaces"];
const TRANSPORTS = ["polling", "websocket", "upgrade"];
const deadline = setTimeout(() => fail("timeout: the whole run took over 420 s"), 420_000);
let browser;
let server;

async function fail(why) {
  console.log("FAIL " + why);
  clearTimeout(deadline);
  server?.process.kill("SIGKILL");
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

/** Starts the server on `port` (0: any); resolves once it listens. */
function startServer(port) {
  const [command, ...args] = serverCommand.map((arg) => arg.replace("{port}", String(port)));
  // Pages of other origins may connect, with cookies (the cross-origin
  // scenario); the handshake sets the "io" cookie. A pingTimeout of 6 s
  // rather than 3: after the backpressure scenario's thaw the client's
  // PONG comes behind megabytes in the kernel's buffers, which a debug
  // build beside the other browser tests on two cores once read in more
  // than 3 s; and no more than 6, since the recovery scenario waits 10 s
  // for the server to notice a cut polling client (2 s + pingTimeout).
  const env = { ...process.env, SIO_CORS: "1", SIO_PING_TIMEOUT: "6000" };
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], env });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not listen within 10 s")), 10_000);
    child.once("error", reject);
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      const match = /^listening (\d+)$/.exec(line.trim());
      if (match) {
        clearTimeout(timer);
        resolve({ process: child, port: Number(match[1]), exited });
      }
    });
  });
}

/** A TCP proxy to the server that can drop every connection it carries,
 * and serves the page itself: a connection whose first request is for
 * /__wasm/… gets the file and is closed, the others are piped to the
 * server. (Playwright's request interception would serve the page from no
 * address at all, and Chromium's local network access checks then refuse
 * its WebSockets to 127.0.0.1.) */
function startProxy() {
  const pairs = new Set();
  const held = new Set();
  const proxy = { cut: false, hold: false, frozen: false, port: 0, pairs };
  const tcp = net.createServer((client) => {
    if (proxy.cut) return client.destroy();
    if (proxy.hold) {
      held.add(client);
      client.on("error", () => {}).on("close", () => held.delete(client));
      return;
    }
    client.once("data", async (first) => {
      const line = first.subarray(0, first.indexOf("\r\n")).toString("latin1");
      const page = /^GET (\/__wasm\/[^ ?]*)/.exec(line);
      if (page) return serveFile(client, page[1]);
      const upstream = net.connect(server.port, "127.0.0.1");
      const pair = { client, upstream };
      pairs.add(pair);
      const close = () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
    });
    client.on("error", () => client.destroy());
  });
  proxy.release = () => {
    for (const client of held) client.destroy();
    held.clear();
  };
  proxy.drop = () => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return new Promise((resolve) =>
    tcp.listen(0, "127.0.0.1", () => {
      proxy.port = tcp.address().port;
      resolve(proxy);
    }),
  );
}

async function harness(step) {
  const [name, ...args] = step.split(" ");
  switch (name) {
    case "cut":
      proxy.cut = true;
      proxy.drop();
      return "";
    case "restore":
      proxy.cut = false;
      return "";
    case "server-url":
      return `http://127.0.0.1:${server.port}/`;
    case "freeze":
      proxy.frozen = true;
      for (const { client, upstream } of proxy.pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      return "";
    case "thaw":
      proxy.frozen = false;
      for (const { client, upstream } of proxy.pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
      return "";
    case "hold":
      proxy.hold = true;
      return "";
    case "release":
      proxy.hold = false;
      proxy.release();
      return "";
    case "miss": {
      const [id, count] = args;
      const control = io(`http://127.0.0.1:${server.port}/`, {
        ...parserOptions,
        auth: { name: "control" },
        transports: ["websocket"],
        reconnection: false,
      });
      try {
        const answer = await control.timeout(15_000).emitWithAck("emit-missed", id, Number(count));
        return String(answer);
      } finally {
        control.close();
      }
    }
    case "stop":
      server.process.kill("SIGKILL");
      await server.exited;
      return "";
    case "start":
      server = await startServer(server.port);
      return "";
    default:
      throw new Error(`unknown harness step ${step}`);
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>suite-wasm</title>
<script type="module">
  import init, * as suite from "./suite_wasm.js";
  await init();
  window.suite = suite;
  // The same scenario in a module worker: no window, no DOM.
  window.runInWorker = (...args) => new Promise((resolve, reject) => {
    const worker = new Worker("./worker.js", { type: "module" });
    const done = (settle, value) => { worker.terminate(); settle(value); };
    worker.onmessage = ({ data }) =>
      "error" in data ? done(reject, new Error(data.error)) : done(resolve, data.report);
    worker.onerror = (event) => done(reject, new Error(event.message || "the worker failed"));
    worker.postMessage(args);
  });
  window.suiteReady = true;
</script>`;

const WORKER = `import init, * as suite from "./suite_wasm.js";
const ready = init();
self.onmessage = async ({ data: [scenario, transport, parser] }) => {
  await ready;
  try {
    self.postMessage({ report: await suite.run(scenario, transport, parser) });
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};`;

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/** Answers one request for the page or the bound module, then closes. */
async function serveFile(client, pathname) {
  const file = pathname.replace(/^\/__wasm\//, "");
  let status = "200 OK";
  let type = TYPES[path.extname(file)] ?? "application/octet-stream";
  let body;
  if (file === "index.html") {
    body = Buffer.from(PAGE);
  } else if (file === "worker.js") {
    body = Buffer.from(WORKER);
  } else {
    try {
      body = await readFile(path.join(pkgDir, path.basename(file)));
    } catch {
      [status, type, body] = ["404 Not Found", "text/plain", Buffer.from("not found")];
    }
  }
  client.end(Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status}\r\ncontent-type: ${type}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`),
    body,
  ]));
}

/** Runs one scenario in a fresh browser context, in the page or (`worker`)
 * in a module worker of it. */
async function runScenario(scenario, transport, where = "page") {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  await page.exposeFunction("harness", harness);
  const origin = `http://127.0.0.1:${proxy.port}`;
  await page.goto(`${origin}/__wasm/index.html`);
  await page.waitForFunction(() => window.suiteReady === true, null, { timeout: 10_000 });
  try {
    const run = where === "worker"
      ? ([s, t, p]) => window.runInWorker(s, t, p)
      : ([s, t, p]) => window.suite.run(s, t, p);
    const report = await page.evaluate(run, [scenario, transport, parserName]);
    console.error(`ok ${scenario} over ${transport} (${parserName}, ${where}): ${report}`);
    // Failed connections the scenario provoked show here (for the record).
    for (const problem of problems) console.error(`   ${problem}`);
  } catch (error) {
    const why = String(error.message ?? error).split("\n")[0];
    await fail(`${why}${problems.length ? ` (${problems.join("; ")})` : ""}`);
  } finally {
    await context.close();
  }
  // A panic inside a listener shows only on the console.
  const panics = problems.filter((p) => /panicked|unreachable/.test(p));
  if (panics.length) await fail(`${scenario} over ${transport}: ${panics.join("; ")}`);
}

let proxy;
try {
  server = await startServer(0);
  proxy = await startProxy();
  browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  for (const scenario of SCENARIOS) {
    for (const transport of TRANSPORTS) {
      await runScenario(scenario, transport);
    }
  }
  // A worker has timers, fetch and WebSocket, and no window.
  for (const scenario of WORKER_SCENARIOS) {
    for (const transport of TRANSPORTS) {
      await runScenario(scenario, transport, "worker");
    }
  }
} catch (error) {
  await fail(String(error.stack ?? error));
}
clearTimeout(deadline);
await browser.close();
server.process.stdin.end();
server.process.kill("SIGKILL");
console.log("ok");
process.exit(0);
