// Drives the chat example in headless Chromium: two people join, talk, see
// each other typing and leaving. The page uses the official socket.io
// browser client served by the Rust server.
// Usage: node chat-browser.mjs <url> <chromium executable> [--compression] [--wasm]
// Prints "ok" and exits 0 when every check holds; otherwise "FAIL <why>".
// --compression: the server has permessage-deflate on. The browser then
// talks to it through a byte-counting proxy in this script, and a big,
// compressible chat message must cross the wire compressed both ways, over
// WebSocket (the extension negotiated) and in a long-polling response
// (gzip, as Chromium asks for it).
// --wasm: Bob uses the page at /wasm/, whose client is ours in Rust compiled
// to WebAssembly (examples/chat-wasm); Ann keeps the official one.
import net from "node:net";
import { chromium } from "playwright-core";

const [serverUrl, executablePath, ...flags] = process.argv.slice(2);
const compression = flags.includes("--compression");
const wasm = flags.includes("--wasm");
const deadline = setTimeout(() => fail("timeout"), 45000);
let browser;

async function fail(why) {
  console.log("FAIL " + why);
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

async function expectText(page, selector, text, what) {
  try {
    await page.locator(selector, { hasText: text }).first().waitFor({ timeout: 10000 });
  } catch {
    const seen = await page.locator(selector).allTextContents().catch(() => []);
    await fail(`${what}: no ${JSON.stringify(text)} in ${selector}; saw ${JSON.stringify(seen)}`);
  }
}

async function join(page, name, path = "") {
  await page.goto(url + path);
  await page.fill("#nickname", name);
  await page.press("#nickname", "Enter");
  await expectText(page, "#messages", "Welcome to the chat", `${name}'s welcome`);
}

/** Bytes carried each way by the proxy, over every connection. */
const carried = { toServer: 0, toClient: 0 };

/** A TCP proxy to the server that counts what it carries; resolves to its URL. */
async function countingProxy() {
  const target = new URL(serverUrl);
  const proxy = net.createServer((client) => {
    const server = net.connect(Number(target.port), target.hostname);
    client.on("data", (data) => (carried.toServer += data.length));
    server.on("data", (data) => (carried.toClient += data.length));
    client.pipe(server);
    server.pipe(client);
    client.on("error", () => server.destroy());
    server.on("error", () => client.destroy());
  });
  proxy.unref();
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${proxy.address().port}/`;
}

/** Records, through the DevTools protocol, the WebSocket extensions the
 * server agreed to and the Content-Encoding of its polling responses. */
async function watchWire(page) {
  const seen = { extensions: [], encodings: [] };
  const header = (headers, name) =>
    Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1] ?? "";
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketHandshakeResponseReceived", (event) =>
    seen.extensions.push(header(event.response.headers, "sec-websocket-extensions")),
  );
  cdp.on("Network.responseReceived", (event) => {
    if (event.response.url.includes("/socket.io/")) {
      seen.encodings.push(header(event.response.headers, "content-encoding"));
    }
  });
  return seen;
}

/** A big chat message from Bob reaches Ann's WebSocket and a long-polling
 * socket opened in her page, compressed every way. */
async function checkCompression(ann, bob, wire) {
  if (!wire.extensions.some((value) => value.includes("permessage-deflate"))) {
    await fail(`no permessage-deflate agreed: ${JSON.stringify(wire.extensions)}`);
  }
  await ann.evaluate(() => new Promise((resolve) => {
    window.pollingMessages = [];
    const polling = io({ transports: ["polling"], forceNew: true });
    polling.on("new message", ({ message }) => window.pollingMessages.push(message));
    polling.on("connect", resolve);
  }));
  // No trailing space: the page trims what it sends.
  const big = "hello compression ".repeat(1200).trim();
  const before = { ...carried };
  await bob.fill("#message", big);
  await bob.press("#message", "Enter");
  await expectText(ann, "#messages", "hello compression hello compression", "the big message");
  await ann.waitForFunction((big) => window.pollingMessages.includes(big), big, { timeout: 10000 });
  const up = carried.toServer - before.toServer;
  const down = carried.toClient - before.toClient;
  // Uncompressed: 21.6 KB up, and twice that down.
  if (up > 8000) await fail(`Bob's ${big.length}-byte message took ${up} bytes to the server`);
  if (down > 8000) await fail(`the message took ${down} bytes to Ann's two sockets`);
  if (!wire.encodings.includes("gzip")) {
    await fail(`no gzip polling response: ${JSON.stringify(wire.encodings)}`);
  }
}

const url = compression ? await countingProxy() : serverUrl;

try {
  browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const ann = await browser.newPage();
  const bob = await browser.newPage();
  const wire = compression ? await watchWire(ann) : null;
  await join(ann, "Ann");
  await expectText(ann, "#count", "1 participant", "Ann alone");
  const problems = [];
  bob.on("pageerror", (error) => problems.push(error.message));
  bob.on("console", (message) => message.type() === "error" && problems.push(message.text()));
  await join(bob, "Bob", wasm ? "wasm/" : "");
  if (wasm && !(await bob.title()).includes("Rust client")) await fail("Bob is not on the Rust client's page");
  await expectText(ann, "#messages", "Bob joined", "join notice");
  await expectText(ann, "#count", "2 participants", "count after join");

  await bob.fill("#message", "Hello from Bob's browser");
  await bob.press("#message", "Enter");
  await expectText(ann, "#messages", "Hello from Bob's browser", "message to Ann");

  await ann.type("#message", "typing", { delay: 20 });
  await expectText(bob, "#typing", "Ann is typing", "typing indicator");
  await ann.press("#message", "Enter");
  await expectText(bob, "#messages", "typing", "Ann's message");

  // The browser client upgraded from long-polling to WebSocket.
  const transport = await ann.evaluate(() => new Promise((resolve) => {
    const check = () => {
      const name = window.socketTransport?.();
      if (name === "websocket") resolve(name);
      else setTimeout(check, 50);
    };
    check();
    setTimeout(() => resolve(window.socketTransport?.() ?? "unknown"), 5000);
  }));
  if (transport !== "websocket") await fail(`Ann's transport is ${transport}`);
  if (compression) await checkCompression(ann, bob, wire);

  // Bob's client keeps the upgrade and goes on talking after it.
  await bob.fill("#message", "Bob again");
  await bob.press("#message", "Enter");
  await expectText(ann, "#messages", "Bob again", "Bob's second message");
  if (problems.length) await fail(`Bob's page: ${problems.join("; ")}`);

  await bob.close();
  await expectText(ann, "#messages", "Bob left", "leave notice");
  await expectText(ann, "#count", "1 participant", "count after leave");
  await browser.close();
  clearTimeout(deadline);
  console.log("ok");
} catch (err) {
  await fail(err.stack || String(err));
}
