// The official Admin UI (@socket.io/admin-ui's own built files, served by
// the Rust server under /admin/) in headless Chromium against the Rust
// server instrumented by crates/admin-ui: log in, see the live sockets and
// rooms, and disconnect a socket from the UI.
// Usage: node admin-ui-browser.mjs <serverUrl> <chromium executable> <screenshot dir>
// Two clients (the official socket.io-client, in Node) connect first:
// alice and bob, both in the room "lobby" (the server's app). The checks:
//  1. a wrong password shows "Invalid credentials";
//  2. the right one opens the dashboard; the server is listed;
//  3. the Sockets page lists alice's and bob's sockets;
//  4. the Rooms page lists "lobby";
//  5. a click on alice's "Disconnect" button disconnects her (her client
//     sees "io server disconnect") and she leaves the list; bob stays;
//     the Events page shows her disconnection and its reason.
// Screenshots of each page go to <screenshot dir>. Prints "ok" and exits 0
// when every check holds; otherwise "FAIL <why>".
import { chromium } from "playwright-core";
import { io } from "socket.io-client";

const [serverUrl, executablePath, shots] = process.argv.slice(2);
const deadline = setTimeout(() => fail("timeout"), 60000);
let browser;

async function fail(why) {
  console.log("FAIL " + why);
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

const connect = (name) =>
  new Promise((resolve) => {
    const socket = io(serverUrl, { auth: { name }, reconnection: false, forceNew: true });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => fail(`${name} could not connect: ${e.message}`));
  });
const alice = await connect("alice");
const bob = await connect("bob");
// (A client forgets its socket's id once disconnected.)
const aliceId = alice.id;
const aliceLeft = new Promise((resolve) => alice.once("disconnect", resolve));

browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
// The UI's page links fonts and icons on CDNs: there is no network here.
await page.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
page.on("pageerror", (error) => console.error("page error:", error.message));

async function shot(name) {
  // Past the UI's page transitions.
  await page.waitForTimeout(400);
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

async function visible(locator, what) {
  try {
    await locator.first().waitFor({ state: "visible", timeout: 10000 });
  } catch {
    await shot(`failed-${what.replace(/\W+/g, "-")}`);
    await fail(`${what}: not shown`);
  }
}

async function logIn(password) {
  // As a user types it: no trailing slash (the UI appends "/admin").
  await page.getByLabel("Server URL").fill(serverUrl.replace(/\/$/, ""));
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Connect" }).click();
}

// 1. A wrong password.
await page.goto(serverUrl + "admin/");
await visible(page.getByLabel("Server URL"), "the login form");
await logIn("wrong");
await visible(page.getByText("Invalid credentials"), "the refusal of a wrong password");
await shot("1-login-refused");

// 2. The right one: the dashboard (its charts come from the stats), and
// the server in the list of servers.
await logIn("changeit");
await visible(page.getByText("connected", { exact: true }), "the connected status");
await visible(page.getByText("Bytes received and sent"), "the dashboard's charts");
await shot("2-dashboard");
await page.goto(serverUrl + "admin/#/servers");
await visible(page.getByText("admin-ui-test-server"), "the server in the list");
await shot("2-servers");

// 3. The sockets.
await page.goto(serverUrl + "admin/#/sockets");
await visible(page.getByText(aliceId), "alice's socket");
await visible(page.getByText(bob.id), "bob's socket");
await shot("3-sockets");

// 4. The rooms.
await page.goto(serverUrl + "admin/#/rooms");
await visible(page.getByText("lobby"), "the lobby room");
await shot("4-rooms");

// 5. Disconnect alice from the UI.
await page.goto(serverUrl + "admin/#/sockets");
const row = page.getByRole("row").filter({ hasText: aliceId });
await visible(row, "alice's row");
await row.getByRole("button").last().click();
const reason = await Promise.race([
  aliceLeft,
  new Promise((resolve) => setTimeout(() => resolve("(still connected)"), 10000)),
]);
if (reason !== "io server disconnect") {
  await shot("failed-disconnect");
  await fail(`alice was not disconnected by the UI: ${reason}`);
}
// (The click also opens the row's details, as in Node's UI.) The list
// goes without her, and the events page tells why she left.
await page.goto(serverUrl + "admin/#/sockets");
const aliceRows = page.getByRole("row").filter({ hasText: aliceId });
for (let tries = 0; (await aliceRows.count()) > 0; tries++) {
  if (tries === 100) {
    await shot("failed-list-after-disconnect");
    await fail("alice is still listed after her disconnection");
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
await visible(page.getByText(bob.id), "bob's socket after alice left");
if (!bob.connected) await fail("bob was disconnected too");
await shot("5-after-disconnect");
await page.goto(serverUrl + "admin/#/events");
await visible(page.getByText("server namespace disconnect"), "the reason alice left, among the events");
await shot("6-events");

bob.close();
await browser.close();
clearTimeout(deadline);
console.log("ok");
process.exit(0);
