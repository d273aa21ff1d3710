// Drives the chat example in headless Chromium: two people join, talk, see
// each other typing and leaving. The page uses the official socket.io
// browser client served by the Rust server.
// Usage: node chat-browser.mjs <url> <chromium executable>
// Prints "ok" and exits 0 when every check holds; otherwise "FAIL <why>".
import { chromium } from "playwright-core";

const [url, executablePath] = process.argv.slice(2);
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

async function join(page, name) {
  await page.goto(url);
  await page.fill("#nickname", name);
  await page.press("#nickname", "Enter");
  await expectText(page, "#messages", "Welcome to the chat", `${name}'s welcome`);
}

try {
  browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const ann = await browser.newPage();
  const bob = await browser.newPage();
  await join(ann, "Ann");
  await expectText(ann, "#count", "1 participant", "Ann alone");
  await join(bob, "Bob");
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

  await bob.close();
  await expectText(ann, "#messages", "Bob left", "leave notice");
  await expectText(ann, "#count", "1 participant", "count after leave");
  await browser.close();
  clearTimeout(deadline);
  console.log("ok");
} catch (err) {
  await fail(err.stack || String(err));
}
