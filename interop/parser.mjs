// The parser the official packages speak in a test run: SIO_PARSER=msgpack
// picks socket.io-msgpack-parser (npm, pinned); anything else, the default
// JSON parser. Spread `parserOptions` into a client's or server's options.
import msgpackParser from "socket.io-msgpack-parser";

export const parserName = process.env.SIO_PARSER === "msgpack" ? "msgpack" : "json";
export const parserOptions = parserName === "msgpack" ? { parser: msgpackParser } : {};
