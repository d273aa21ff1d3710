// The network soak's official clients (crates/suite/src/soak/network.rs),
// connecting through the soak's faulty relay:
//
//   node soak-client.mjs <url> <clients> <puts> <everyMs> <retries> <ackTimeoutMs>
//
// Client i is named node-<i> and uses WebSocket, long-polling, or polling
// upgraded to WebSocket, in turn. It emits put(name, n) for n = 1..puts,
// one every everyMs, with Node's retries and ackTimeout (the client's own
// queue sends them one at a time and tries each up to retries + 1 times),
// and records each outcome: A (acked) or F (failed after every try). Once
// every outcome is known it prints {"name", "outcomes", "reconnects"} on a
// line of its own and disconnects. Exits when every client is done.
import { io } from "socket.io-client";

const [url, clients, puts, everyMs, retries, ackTimeout] = process.argv.slice(2);
const TRANSPORTS = [["websocket"], ["polling"], ["polling", "websocket"]];

function client(index) {
  return new Promise((resolve) => {
    const name = `node-${index}`;
    const transports = TRANSPORTS[index % 3];
    const socket = io(url, {
      transports,
      upgrade: transports.length > 1,
      forceNew: true,
      retries: Number(retries),
      ackTimeout: Number(ackTimeout),
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
    });
    let reconnects = 0;
    socket.io.on("reconnect", () => reconnects++);
    const outcomes = new Array(Number(puts)).fill("?");
    let pending = Number(puts);
    let n = 0;
    const timer = setInterval(() => {
      n += 1;
      if (n >= Number(puts)) clearInterval(timer);
      const seq = n;
      socket.emit("put", name, seq, (err) => {
        outcomes[seq - 1] = err ? "F" : "A";
        pending -= 1;
        if (pending === 0) {
          console.log(JSON.stringify({ name, outcomes: outcomes.join(""), reconnects }));
          socket.disconnect();
          resolve();
        }
      });
    }, Number(everyMs));
  });
}

await Promise.all(Array.from({ length: Number(clients) }, (_, i) => client(i)));
process.exit(0);
