#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/.

The stateful targets read `arbitrary`-derived inputs (arbitrary 1.x): an
enum variant is a little-endian u32 scaled into the variant count, integers
are little-endian, a bool is a byte's low bit, an Option a bool then the
value, and a Vec a "keep going" bool before each element. Strings take their
length from the end of the input, so the seeds avoid them. Check a seed with
`cargo +nightly fuzz fmt <target> <file>`.

Run from fuzz/: python3 gen_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    path = os.path.join(HERE, "corpus", target, name)
    with open(path, "wb") as f:
        f.write(data)


# --- arbitrary encoding -----------------------------------------------------

def variant(i, n):
    v = (i * 2**32 + n - 1) // n
    assert (v * n) >> 32 == i
    return struct.pack("<I", v)


def u8(x):
    return struct.pack("<B", x)


def u16(x):
    return struct.pack("<H", x)


def i8(x):
    return struct.pack("<b", x)


def u64(x):
    return struct.pack("<Q", x)


def boolean(b):
    return b"\x01" if b else b"\x00"


def option(value):
    return b"\x00" if value is None else b"\x01" + value


def vec(items):
    return b"".join(b"\x01" + item for item in items) + b"\x00"


def rest(items):
    """The last field of the top-level input: elements until a false byte."""
    return b"".join(b"\x01" + item for item in items)


# --- shared specs (fuzz/src/lib.rs) -----------------------------------------

PACKET = ["Open", "Close", "Ping", "PingProbe", "Pong", "PongProbe", "PingData",
          "PongData", "Text", "Binary", "Upgrade", "Noop"]


def packet(name, payload=None):
    out = variant(PACKET.index(name), len(PACKET))
    if name == "Binary":
        out += vec([u8(b) for b in payload])
    return out


def msg_sized(n):
    return variant(2, 3) + u16(n)


def msg_binary(data):
    return variant(1, 3) + vec([u8(b) for b in data])


def body_packets(*packets):
    return variant(1, 3) + vec(list(packets))


def body_raw(data):
    return variant(0, 3) + vec([u8(b) for b in data])


def body_around_limit(delta):
    return variant(2, 3) + i8(delta)


def frame_packet(p):
    return variant(0, 4) + p


def frame_binary(data):
    return variant(2, 4) + vec([u8(b) for b in data])


def frame_around_limit(delta):
    return variant(3, 4) + i8(delta)


def pick_latest():
    return variant(0, 3)


def pick_index(i):
    return variant(1, 3) + u8(i)


def pick_raw(n):
    return variant(2, 3) + u64(n)


# --- server session -----------------------------------------------------------

S_OPS = ["Advance", "Open", "Poll", "PollAborted", "Post", "Upgrade", "WsFrame",
         "WsClosed", "Send", "Close", "Timeout", "Route"]


def s_op(name, *fields):
    return variant(S_OPS.index(name), len(S_OPS)) + b"".join(fields)


def server_config(ping_interval=100, ping_timeout=50, upgrade_timeout=500,
                  close_timeout=300, max_payload=200, max_buffered=8,
                  transports=3, allow_upgrades=True):
    # Config::build: interval = 1 + 2*x ms, max_payload = 64 + x % 4033,
    # max_buffered = 1 + x % 24, transports: 0 polling, 1 websocket, else all.
    return (u8(ping_interval) + u8(ping_timeout) + u16(upgrade_timeout)
            + u16(close_timeout) + u16(max_payload) + u8(max_buffered)
            + u8(transports) + boolean(allow_upgrades))


def server_input(ops, websocket=False, **config):
    return server_config(**config) + boolean(websocket) + rest(ops)


def server_seeds():
    s0 = u8(0)
    # Polling: poll, heartbeat answered over POST, messages both ways, close.
    write("eio_server_session", "polling_heartbeat", server_input([
        s_op("Poll", s0),
        s_op("Send", s0, msg_sized(5)),
        s_op("Poll", s0),
        s_op("Advance", u16(250)),
        s_op("Timeout", s0),
        s_op("Post", s0, body_packets(packet("Pong"), packet("Binary", b"\x01\x02"))),
        s_op("Poll", s0),
        s_op("Send", s0, msg_binary(b"\x01\x02\x03")),
        s_op("Close", s0),
        s_op("Poll", s0),
    ]))
    # Polling → WebSocket upgrade with a parked GET and a NOOP, then traffic.
    write("eio_server_session", "upgrade", server_input([
        s_op("Poll", s0),
        s_op("Upgrade", s0),
        s_op("WsFrame", s0, pick_latest(), frame_packet(packet("PingProbe"))),
        s_op("Poll", s0),
        s_op("Advance", u16(150)),
        s_op("Timeout", s0),
        s_op("Send", s0, msg_sized(3)),
        s_op("WsFrame", s0, pick_latest(), frame_packet(packet("Upgrade"))),
        s_op("Send", s0, msg_binary(b"\xff")),
        s_op("WsFrame", s0, pick_latest(), frame_binary(b"\x00\x01")),
        s_op("Advance", u16(250)),
        s_op("Timeout", s0),
        s_op("WsFrame", s0, pick_latest(), frame_packet(packet("Pong"))),
        s_op("WsClosed", s0, pick_latest()),
    ]))
    # An upgrade that fails (wrong probe), then one that times out.
    write("eio_server_session", "upgrade_abandoned", server_input([
        s_op("Upgrade", s0),
        s_op("WsFrame", s0, pick_latest(), frame_packet(packet("Noop"))),
        s_op("Upgrade", s0),
        s_op("WsFrame", s0, pick_latest(), frame_packet(packet("PingProbe"))),
        s_op("Advance", u16(1200)),
        s_op("Poll", s0),
    ]))
    # WebSocket session: heartbeat, oversized frame closes it.
    write("eio_server_session", "websocket", server_input([
        s_op("Advance", u16(210)),
        s_op("Timeout", s0),
        s_op("WsFrame", s0, pick_index(0), frame_packet(packet("Pong"))),
        s_op("Send", s0, msg_sized(10)),
        s_op("WsFrame", s0, pick_index(0), frame_around_limit(1)),
    ], websocket=True))
    # Oversized POST, a POST at the limit, overlapping polls, abort.
    write("eio_server_session", "post_limits", server_input([
        s_op("Post", s0, body_around_limit(0)),
        s_op("Open", boolean(False)),
        s_op("Post", u8(1), body_around_limit(1)),
        s_op("Open", boolean(False)),
        s_op("Poll", u8(2)),
        s_op("Poll", u8(2)),
        s_op("Open", boolean(False)),
        s_op("Poll", u8(0)),
        s_op("PollAborted", u8(0), pick_latest()),
    ]))
    # A client that answers every PING over POST but never polls: the unread
    # PINGs must not pile up in the buffer.
    ops = [s_op("Send", s0, msg_sized(1))]
    for _ in range(4):
        ops += [s_op("Advance", u16(250)), s_op("Timeout", s0),
                s_op("Post", s0, body_packets(packet("Pong")))]
    write("eio_server_session", "pong_without_reading", server_input(ops, max_buffered=0))
    # A client that never reads and never answers: buffer fills, ping times out.
    write("eio_server_session", "ping_timeout", server_input(
        [s_op("Send", s0, msg_sized(1)) for _ in range(10)] + [
            s_op("Advance", u16(300)),
            s_op("Timeout", s0),
            s_op("Advance", u16(300)),
            s_op("Timeout", s0),
            s_op("Poll", s0),
        ], max_buffered=4))


# --- client session -----------------------------------------------------------

C_OPS = ["Advance", "Connect", "HttpResponse", "HttpError", "WsOpen", "WsFrame",
         "WsClosed", "Send", "Close", "Timeout"]


def c_op(name, *fields):
    return variant(C_OPS.index(name), len(C_OPS)) + b"".join(fields)


def handshake(sid=0, websocket=True, ping_interval=300, ping_timeout=200,
              max_payload=1000):
    return (u8(sid) + boolean(websocket) + u16(ping_interval) + u16(ping_timeout)
            + option(None if max_payload is None else u16(max_payload)) + option(None))


def req_get():
    return variant(0, 3)


def req_post():
    return variant(1, 3)


def status_ok():
    return variant(0, 2)


def status(n):
    return variant(1, 2) + u16(n)


def resp_handshake(spec, *packets):
    return variant(0, 2) + spec + vec(list(packets))


def resp_body(body):
    return variant(1, 2) + body


def ws_handshake(spec):
    return variant(0, 2) + spec


def ws_frame(frame):
    return variant(1, 2) + frame


def client_config(transports=3, upgrade=True, max_buffered=8):
    # transports % 8: 0 polling, 1 websocket, 2 none, else all.
    return u8(transports) + boolean(upgrade) + u8(max_buffered)


def client_input(ops, **config):
    return client_config(**config) + rest(ops)


def client_seeds():
    hs = handshake()
    # Handshake over polling, then the full upgrade dance with a POST in flight.
    upgrade_prefix = [
        c_op("HttpResponse", req_get(), status_ok(), resp_handshake(hs, packet("Binary", b"\x07"))),
        c_op("WsOpen", pick_latest()),
        c_op("Send", msg_sized(5)),
        c_op("WsFrame", pick_latest(), ws_frame(frame_packet(packet("PongProbe")))),
        c_op("HttpResponse", req_get(), status_ok(), resp_body(body_packets(packet("Noop")))),
    ]
    write("eio_client_session", "upgrade", client_input(upgrade_prefix + [
        c_op("HttpResponse", req_post(), status_ok(), resp_body(body_raw(b"ok"))),
        c_op("WsFrame", pick_latest(), ws_frame(frame_packet(packet("Ping")))),
        c_op("Send", msg_binary(b"\x01\x02")),
        c_op("WsFrame", pick_latest(), ws_frame(frame_binary(b"\x09"))),
        c_op("Close"),
    ]))
    # The same, but the server goes silent while polling is paused.
    write("eio_client_session", "upgrade_ping_timeout", client_input(upgrade_prefix + [
        c_op("Advance", u16(600)),
        c_op("Timeout"),
    ]))
    # Polling only: heartbeat, batching of queued messages, a failed request.
    write("eio_client_session", "polling", client_input([
        c_op("HttpResponse", req_get(), status_ok(),
             resp_handshake(handshake(websocket=False, max_payload=20), packet("Ping"))),
        c_op("Send", msg_sized(12)),
        c_op("Send", msg_sized(12)),
        c_op("Send", msg_sized(3)),
        c_op("HttpResponse", req_post(), status_ok(), resp_body(body_raw(b"ok"))),
        c_op("HttpResponse", req_get(), status_ok(),
             resp_body(body_packets(packet("Ping"), packet("Binary", b"\x00")))),
        c_op("HttpResponse", req_post(), status_ok(), resp_body(body_raw(b"ok"))),
        c_op("Advance", u16(400)),
        c_op("HttpResponse", req_get(), status(500), resp_body(body_raw(b""))),
    ], transports=0))
    # WebSocket only: open, handshake frame, ping, close by the server.
    write("eio_client_session", "websocket", client_input([
        c_op("WsOpen", pick_latest()),
        c_op("WsFrame", pick_latest(), ws_handshake(hs)),
        c_op("WsFrame", pick_latest(), ws_frame(frame_packet(packet("Ping")))),
        c_op("Send", msg_sized(2)),
        c_op("WsFrame", pick_latest(), ws_frame(frame_packet(packet("Close")))),
    ], transports=1))
    # A probe that fails, then a close while a POST is in flight.
    write("eio_client_session", "probe_fails_then_close", client_input([
        c_op("HttpResponse", req_get(), status_ok(), resp_handshake(hs)),
        c_op("WsClosed", pick_latest()),
        c_op("Send", msg_sized(1)),
        c_op("Close"),
        c_op("HttpResponse", req_post(), status_ok(), resp_body(body_raw(b"ok"))),
        c_op("HttpError", req_get()),
    ]))


# --- codecs ----------------------------------------------------------------------

def codec_seeds():
    handshake_json = ('0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,'
                      '"pingTimeout":200,"maxPayload":1000}')
    for name, wire in [
        ("message", "4hello"),
        ("message_unicode", "4€ and ünïcode"),
        ("empty_message", "4"),
        ("ping_probe", "2probe"),
        ("pong_probe", "3probe"),
        ("ping", "2"),
        ("close_with_data", "1x"),
        ("upgrade", "5"),
        ("noop", "6"),
        ("handshake", handshake_json),
        ("binary_bytes", b"\x01\x02\x03\x04\xff"),
        ("unknown_type", "7"),
    ]:
        write("eio_packet", name, wire)
    for name, wire in [
        ("text_and_binary", "4hello\x1ebAQIDBA=="),
        ("protocol_example", "4hello\x1e4€\x1ebAQIDBA=="),
        ("unpadded_base64", "bAQIDBA"),
        ("heartbeat", "3\x1e6"),
        ("handshake_then_ping", handshake_json + "\x1e2"),
        ("bad_record_in_middle", "4a\x1eabc\x1e4b"),
        ("trailing_separator", "4a\x1e"),
        ("bad_base64", "b!!!"),
        ("many_small", "\x1e".join(["4x"] * 16)),
        ("not_utf8", b"4\xff"),
    ]:
        write("eio_payload", name, wire)


if __name__ == "__main__":
    codec_seeds()
    server_seeds()
    client_seeds()
