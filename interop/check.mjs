// The verdict protocol of the interop scripts: print "ok" and exit 0 when
// every check held, "FAIL <why>" and exit 1 at the first that did not, or
// when the run outlives its deadline.
import { isDeepStrictEqual } from "node:util";

export function fail(why) {
  console.log("FAIL " + why);
  process.exit(1);
}

export function expectEqual(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    fail(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

/** Fails with `what` unless `done` is called within `ms`. */
export function deadline(what, ms = 8000) {
  const timer = setTimeout(() => fail(`timeout in ${what}`), ms);
  return function done() {
    clearTimeout(timer);
    console.log("ok");
    process.exit(0);
  };
}
