#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/.

The stateful targets read `arbitrary`-derived inputs (arbitrary 1.x): an
enum variant is a little-endian u32 scaled into the variant count, integers
are little-endian, a bool is a byte's low bit, an Option a bool then the
value, and a Vec a "keep going" bool before each element. Strings take their
length from the end of the input, so the seeds avoid them (the Socket.IO
specs in src/sio.rs take text as byte vectors for that reason). Check a seed
with `cargo +nightly fuzz fmt <target> <file>`.

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


# --- socketio-proto: shared specs (fuzz/src/sio.rs) ----------------------------

def bytes_vec(data):
    if isinstance(data, str):
        data = data.encode()
    return vec([u8(b) for b in data])


NSP = ["Main", "Named", "Seen", "Raw"]
NAMESPACES = ["/custom", "/a", "/b/c", "/ünï"]


def nsp_main():
    return variant(0, 4)


def nsp_named(name):
    return variant(1, 4) + u8(NAMESPACES.index(name))


def nsp_seen(i=0):
    return variant(2, 4) + u8(i)


LEAF = ["Null", "Bool", "Int", "Str", "Placeholder", "Reserved"]


def leaf_int(n):
    return variant(2, 6) + struct.pack("<q", n)


def leaf_str(text):
    return variant(3, 6) + bytes_vec(text)


def leaf_placeholder(n):
    return variant(4, 6) + u8(n)


def json_leaf(leaf):
    return variant(0, 4) + leaf


def json_object(*entries):
    return variant(2, 4) + vec([u8(k) + v for k, v in entries])


def json_nested(depth, leaf):
    return variant(3, 4) + u8(depth) + leaf


NAME = ["Message", "Chat", "Reserved", "Number", "Raw"]


def name_message():
    return variant(0, 5)


def name_reserved(i):
    return variant(2, 5) + u8(i)


SIO_PACKET = ["Connect", "Disconnect", "Event", "Ack", "Refused"]


def sio_connect(nsp, auth=None):
    return (variant(0, 5) + nsp
            + option(None if auth is None else vec([u8(k) + v for k, v in auth])))


def sio_disconnect(nsp):
    return variant(1, 5) + nsp


def sio_event(nsp, name=None, args=(), ack=None, attachments=()):
    return (variant(2, 5) + nsp + (name or name_message()) + vec(list(args))
            + option(ack) + vec([bytes_vec(a) for a in attachments]))


def sio_ack(nsp, pick, args=(), attachments=()):
    return (variant(3, 5) + nsp + pick + vec(list(args))
            + vec([bytes_vec(a) for a in attachments]))


def sio_connect_error(nsp, data):
    return variant(4, 5) + variant(0, 2) + nsp + data


def sio_raw(text):
    return variant(4, 5) + variant(1, 2) + bytes_vec(text)


def b_raw_text(text):
    """A Raw packet spec: this text as one message."""
    return sio_raw(text)


# --- sio_binary ---------------------------------------------------------------------

def b_packet(p):
    return variant(0, 5) + p


def b_header(count, ack=False, nsp=None, ack_id=None):
    return (variant(1, 5) + boolean(ack) + u8(count) + (nsp or nsp_main())
            + option(None if ack_id is None else u16(ack_id)))


def b_text(text):
    return variant(2, 5) + bytes_vec(text)


def b_binary(data):
    return variant(3, 5) + bytes_vec(data)


def b_sized(n):
    return variant(4, 5) + u16(n)


def binary_input(messages, max_attachments=4, max_bytes=100):
    # max_attachments % 13, max_attachment_bytes % 2048.
    return u8(max_attachments) + u16(max_bytes) + rest(messages)


def sio_binary_seeds():
    event2 = sio_event(nsp_main(), args=[json_leaf(leaf_int(1))],
                       attachments=[b"\x01\x02", b"\x03"])
    write("sio_binary", "event_two_attachments", binary_input([b_packet(event2)]))
    write("sio_binary", "ack_with_attachment", binary_input([
        b_packet(sio_ack(nsp_named("/custom"), pick_raw(12), attachments=[b"\xff"])),
        b_packet(sio_event(nsp_main())),
    ]))
    write("sio_binary", "attachments_too_large", binary_input(
        [b_header(2), b_sized(3), b_sized(4), b_header(1), b_binary(b"x")], max_bytes=6))
    write("sio_binary", "too_many_attachments", binary_input(
        [b_header(3), b_binary(b"x"), b_header(1), b_binary(b"y")], max_attachments=2))
    write("sio_binary", "text_while_waiting", binary_input(
        [b_header(2), b_binary(b"a"), b_text('2["a"]'), b_binary(b"b")]))
    write("sio_binary", "zero_attachments", binary_input(
        [b_text('50-["a"]'), b_text('60-12[]'), b_binary(b"z")], max_attachments=0))


# --- sio_server_conn --------------------------------------------------------------

CONN_OPS = ["Advance", "Tick", "Timeout", "Pong", "Poll", "Post", "WsPacket", "Upgrade",
            "Transport", "Accept", "Reject", "Emit", "EmitWithAck", "Ack", "Disconnect",
            "Close"]
TRANSPORT_OPS = ["PollAborted", "PostRaw", "WsFrame", "WsClosed"]


def k_op(name, *fields):
    if name in TRANSPORT_OPS:
        return (variant(CONN_OPS.index("Transport"), len(CONN_OPS))
                + variant(TRANSPORT_OPS.index(name), len(TRANSPORT_OPS)) + b"".join(fields))
    return variant(CONN_OPS.index(name), len(CONN_OPS)) + b"".join(fields)


def app_seen(i=0):
    return variant(0, 4) + u8(i)


def app_latest():
    return variant(1, 4)


def app_main():
    return variant(2, 4)


def conn_config(ping_interval=100, ping_timeout=50, upgrade_timeout=500,
                close_timeout=300, max_payload=1000, max_buffered=8,
                allow_upgrades=True, connect_timeout=1000, max_attachments=4,
                max_attachment_bytes=100):
    # Server as in eio_server_session; connect_timeout = 1 + x % 4000 ms,
    # max_attachments % 13, max_attachment_bytes % 4096.
    return (u8(ping_interval) + u8(ping_timeout) + u16(upgrade_timeout)
            + u16(close_timeout) + u16(max_payload) + u8(max_buffered)
            + boolean(allow_upgrades) + u16(connect_timeout) + u8(max_attachments)
            + u16(max_attachment_bytes))


def conn_input(ops, websocket=False, **config):
    return conn_config(**config) + boolean(websocket) + rest(ops)


def post(*packets):
    return k_op("Post", vec(list(packets)))


def ws_packet(p, ws=None):
    return k_op("WsPacket", ws or pick_latest(), p)


def accept(nsp=None, pid=None):
    return k_op("Accept", nsp or app_latest(),
                option(None if pid is None else bytes_vec(pid)))


def emit(nsp=None, attachments=0):
    return k_op("Emit", nsp or app_latest(), vec([]), u8(attachments))


def emit_with_ack(nsp=None, timeout=None, attachments=0):
    return k_op("EmitWithAck", nsp or app_latest(),
                option(None if timeout is None else u16(timeout)), u8(attachments))


def sio_server_conn_seeds():
    # WebSocket: join `/`, events with and without acks both ways, a server
    # ack that is answered and one that times out, then the client leaves.
    write("sio_server_conn", "websocket_events_and_acks", conn_input([
        ws_packet(sio_connect(nsp_main())),
        accept(),
        ws_packet(sio_event(nsp_main(), args=[json_leaf(leaf_str("hi"))])),
        ws_packet(sio_event(nsp_main(), ack=pick_raw(7), attachments=[b"\x01"])),
        k_op("Ack", app_latest(), pick_latest(), u8(1)),
        emit_with_ack(timeout=100),
        ws_packet(sio_ack(nsp_main(), pick_latest(), args=[json_leaf(leaf_int(2))])),
        emit_with_ack(timeout=50, attachments=2),
        k_op("Advance", u16(60)),
        k_op("Timeout"),
        ws_packet(sio_disconnect(nsp_main())),
        k_op("Close"),
    ], websocket=True))
    # An ack from the wrong namespace must not cancel the pending one: the
    # emit still times out (or is answered on its own namespace).
    write("sio_server_conn", "ack_on_wrong_namespace", conn_input([
        ws_packet(sio_connect(nsp_main())),
        accept(),
        ws_packet(sio_connect(nsp_named("/custom"))),
        accept(),
        emit_with_ack(app_main(), timeout=100),
        ws_packet(sio_ack(nsp_named("/custom"), pick_latest())),
        emit_with_ack(app_main(), timeout=100),
        ws_packet(sio_ack(nsp_named("/custom"), pick_latest())),
        ws_packet(sio_ack(nsp_main(), pick_latest())),
    ], websocket=True))
    # Polling: a custom namespace with auth and a recovery pid, a binary
    # event in one POST, an emit collected by a GET.
    write("sio_server_conn", "polling_custom_namespace", conn_input([
        post(sio_connect(nsp_named("/custom"), auth=[(1, leaf_str("tok"))])),
        accept(pid='p"1'),
        k_op("Poll"),
        post(sio_event(nsp_seen(0), attachments=[b"ab", b"c"]),
             sio_event(nsp_seen(0), args=[json_nested(5, leaf_placeholder(0))])),
        emit(attachments=1),
        k_op("Poll"),
        post(sio_disconnect(nsp_seen(0))),
        k_op("Poll"),
    ]))
    # A client that does not poll: emits fill the Engine.IO buffer, then a
    # second namespace's CONNECT is accepted into a full buffer.
    write("sio_server_conn", "accept_into_full_buffer", conn_input([
        post(sio_connect(nsp_main())),
        accept(),
        emit(), emit(), emit(),
        post(sio_connect(nsp_named("/a"))),
        accept(),
        k_op("Reject", app_latest(), u8(1)),
        k_op("Poll"),
        accept(),
        post(sio_event(nsp_named("/a"))),
        k_op("Poll"),
    ], max_buffered=2))
    # Reject, then the client tries again and is accepted.
    write("sio_server_conn", "reject_then_retry", conn_input([
        ws_packet(sio_connect(nsp_named("/b/c"))),
        k_op("Reject", app_latest(), u8(0)),
        ws_packet(sio_connect(nsp_named("/b/c"))),
        accept(),
        k_op("Disconnect", app_latest()),
        emit(),
    ], websocket=True))
    # No namespace joined in time: the connection closes; commands fail.
    write("sio_server_conn", "connect_timeout", conn_input([
        post(sio_connect(nsp_main())),
        k_op("Advance", u16(600)),
        k_op("Timeout"),
        accept(),
        k_op("Poll"),
    ], connect_timeout=500, ping_interval=250))
    # Polling → WebSocket upgrade with a joined namespace, a parked GET
    # released by a NOOP, a binary event split across the two transports,
    # heartbeats answered on both.
    write("sio_server_conn", "upgrade", conn_input([
        post(sio_connect(nsp_main())),
        accept(),
        k_op("Poll"),
        k_op("Poll"),
        k_op("Tick", u8(150)),
        k_op("Pong"),
        k_op("Upgrade", boolean(False)),
        k_op("Poll"),
        emit(),
        k_op("Post", vec([b_raw_text('51-["ev",{"_placeholder":true,"num":0}]')])),
        k_op("WsFrame", pick_latest(), frame_packet(packet("Upgrade"))),
        k_op("WsFrame", pick_latest(), frame_binary(b"\x07")),
        ws_packet(sio_event(nsp_main(), attachments=[b"\x00"])),
        emit(attachments=1),
        k_op("Tick", u8(250)),
        k_op("Pong"),
        k_op("WsClosed", pick_latest()),
    ]))
    # Heartbeats answered over polling while the client keeps a namespace.
    write("sio_server_conn", "polling_heartbeat", conn_input([
        post(sio_connect(nsp_main())),
        accept(),
        emit_with_ack(timeout=400),
    ] + [k_op("Tick", u8(120)), k_op("Poll"), k_op("Pong")] * 5 + [
        k_op("Upgrade", boolean(True)),
        ws_packet(sio_ack(nsp_main(), pick_latest())),
    ], ping_interval=50, ping_timeout=60))
    # Protocol violations: an event before joining, garbage, a CONNECT_ERROR
    # from the client.
    write("sio_server_conn", "event_before_connect", conn_input([
        ws_packet(sio_event(nsp_named("/a"))),
        accept(app_main()),
    ], websocket=True))
    write("sio_server_conn", "garbage_and_connect_error", conn_input([
        post(sio_connect(nsp_main())),
        accept(),
        post(sio_connect_error(nsp_main(), json_object((1, leaf_str("x"))))),
        emit(),
    ]))
    write("sio_server_conn", "raw_text", conn_input([
        ws_packet(sio_connect(nsp_main())),
        accept(),
        ws_packet(sio_raw('42["x"')),
    ], websocket=True))
    write("sio_server_conn", "reserved_event_name", conn_input([
        ws_packet(sio_connect(nsp_main())),
        accept(),
        ws_packet(sio_event(nsp_main(), name=name_reserved(0))),
    ], websocket=True))
    # Binary attachments over the decoder's byte limit.
    write("sio_server_conn", "attachments_too_large", conn_input([
        ws_packet(sio_connect(nsp_main())),
        accept(),
        ws_packet(sio_event(nsp_main(), attachments=[b"0123456789", b"0123456789"])),
    ], websocket=True, max_attachment_bytes=15))


# --- sio_client_conn ----------------------------------------------------------------

CC_OPS = ["Advance", "Timeout", "Deadline", "Connect", "Join", "ProvideAuth", "Leave",
          "Emit", "EmitWithAck", "Ack", "Close", "Open", "Deliver", "HttpResponse",
          "HttpError", "WsOpen", "WsFrame", "WsClosed"]


def cc_op(name, *fields):
    return variant(CC_OPS.index(name), len(CC_OPS)) + b"".join(fields)


def a_main():
    return variant(0, 5)


def a_named(name):
    return variant(1, 5) + u8(NAMESPACES.index(name))


def a_joined(i=0):
    return variant(2, 5) + u8(i)


def a_auth_asked():
    return variant(3, 5)


def sp_accept(nsp, pid=None, sid=True):
    return variant(0, 5) + nsp + option(None if pid is None else u8(pid)) + boolean(sid)


def sp_packet(p):
    return variant(1, 5) + p


def sp_miscounted(nsp, announced, sent, ack=None):
    return variant(2, 5) + nsp + u8(announced) + u8(sent) + option(None if ack is None else u8(ack))


def sp_engine(p):
    return variant(4, 5) + p


def cc_join(nsp, auth=None, on_demand=False):
    return cc_op("Join", nsp, option(None if auth is None else vec([u8(k) + v for k, v in auth])),
                 boolean(on_demand))


def cc_emit(nsp, attachments=0, volatile=False, args=()):
    return cc_op("Emit", nsp, vec(list(args)), u8(attachments), boolean(volatile))


def cc_emit_ack(nsp, timeout=None, attachments=0):
    return cc_op("EmitWithAck", nsp, u8(attachments), option(None if timeout is None else u16(timeout)))


def cc_deliver(*packets, websocket=True):
    return cc_op("Deliver", boolean(websocket), vec(list(packets)))


def cc_advance(n):
    return cc_op("Advance", u16(n))


def cc_deadline(early=False):
    return cc_op("Deadline", boolean(early))


def cc_config(transports=1, upgrade=False, engine_buffer=31, reconnection=True, attempts=None,
              delay=100, delay_max=1000, jitter=0, open_timeout=3000, retries=0,
              ack_timeout=None, max_buffered=7, max_attachments=10, max_attachment_bytes=1000,
              seed=1):
    # Config::build: transports % 8 (0 polling, 1 websocket, 2 none, else all);
    # engine buffer 1 + x % 32; attempts x % 5; delays 1 + x ms; open timeout
    # 1 + x % 5000 ms; retries x % 8 (0-4: none, 5-7: 1-3); ack timeout x % 3000
    # ms; max_buffered 1 + x % 8.
    return (u8(transports) + boolean(upgrade) + u8(engine_buffer) + boolean(reconnection)
            + option(None if attempts is None else u8(attempts)) + u16(delay) + u16(delay_max)
            + u8(jitter) + u16(open_timeout) + u8(retries)
            + option(None if ack_timeout is None else u16(ack_timeout)) + u8(max_buffered)
            + u8(max_attachments) + u16(max_attachment_bytes) + u64(seed))


def cc_input(ops, **config):
    return cc_config(**config) + rest(ops)


def sio_client_conn_seeds():
    # A server that pings now and then keeps the session (window ~4 s).
    hs = handshake(websocket=False, ping_interval=1999, ping_timeout=1999)
    hs_upgrade = handshake(websocket=True, ping_interval=1999, ping_timeout=1999)
    # WebSocket: join `/`, events and acks both ways, a binary emit, leave.
    write("sio_client_conn", "websocket_events_and_acks", cc_input([
        cc_join(a_main()),
        cc_op("Open", hs),
        cc_deliver(sp_accept(nsp_main())),
        cc_emit_ack(a_main(), timeout=500),
        cc_deliver(sp_packet(sio_ack(nsp_main(), pick_latest(), args=[json_leaf(leaf_int(1))]))),
        cc_deliver(sp_packet(sio_event(nsp_main(), ack=pick_raw(7), attachments=[b"\x01"]))),
        cc_op("Ack", a_main(), pick_latest(), u8(1)),
        cc_emit(a_main(), attachments=2),
        cc_emit_ack(a_main(), timeout=300),
        cc_advance(400),
        cc_op("Timeout"),
        cc_op("Leave", a_main()),
        cc_op("Close"),
    ]))
    # Polling with an upgrade: a namespace with auth, the probe, events over
    # both transports, then the WebSocket drops and the client reconnects
    # and recovers its session (same pid).
    write("sio_client_conn", "polling_upgrade_reconnect_recover", cc_input([
        cc_join(a_named("/custom"), auth=[(1, leaf_str("tok"))]),
        cc_op("Open", hs_upgrade),
        cc_op("WsOpen", pick_latest()),
        cc_op("HttpResponse", req_get(), status_ok(),
              cc_resp_packets(sp_accept(nsp_named("/custom"), pid=1))),
        cc_op("HttpResponse", req_post(), status_ok(), cc_resp_body(body_raw(b"ok"))),
        cc_op("WsFrame", pick_latest(), cc_ws_frame(frame_packet(packet("PongProbe")))),
        cc_op("HttpResponse", req_get(), status_ok(), cc_resp_body(body_packets(packet("Noop")))),
        cc_emit(a_named("/custom")),
        cc_deliver(sp_packet(sio_event(nsp_named("/custom"), args=[json_leaf(leaf_str("o1"))]))),
        cc_op("WsClosed", pick_latest()),
        cc_deadline(early=True),
        cc_deadline(),
        cc_op("Open", hs),
        cc_deliver(sp_packet(sio_event(nsp_named("/custom"))),
                   sp_accept(nsp_named("/custom"), pid=1), websocket=False),
    ], transports=3, upgrade=True))
    # Auth asked for at every CONNECT; emits buffered while connecting (one
    # too many for the buffer), events held until the CONNECT answer.
    write("sio_client_conn", "auth_on_demand_offline_buffer", cc_input([
        cc_join(a_named("/a"), on_demand=True),
        cc_emit(a_named("/a")),
        cc_emit_ack(a_named("/a"), timeout=2000),
        cc_emit(a_named("/a")),
        cc_emit(a_named("/a"), volatile=True),
        cc_op("Open", hs),
        cc_op("ProvideAuth", a_auth_asked(), option(vec([u8(2) + leaf_int(5)]))),
        cc_deliver(sp_packet(sio_event(nsp_named("/a"))), sp_packet(sio_event(nsp_named("/a"))),
                   sp_packet(sio_event(nsp_named("/a"))), sp_accept(nsp_named("/a"))),
        cc_deliver(sp_packet(sio_ack(nsp_named("/a"), pick_latest()))),
    ], max_buffered=1))
    # Retries: one emit in flight at a time, re-sent after ack_timeout until
    # answered or out of tries.
    write("sio_client_conn", "retries", cc_input([
        cc_join(a_main()),
        cc_op("Open", hs),
        cc_deliver(sp_accept(nsp_main())),
        cc_emit_ack(a_main()),
        cc_emit(a_main()),
        cc_emit_ack(a_main()),
        cc_deadline(),
        cc_deliver(sp_engine(packet("Ping"))),
        cc_deadline(),
        cc_deliver(sp_packet(sio_ack(nsp_main(), pick_index(0)))),
        cc_deadline(),
        cc_deliver(sp_packet(sio_ack(nsp_main(), pick_raw(1)))),
        cc_deadline(),
    ], retries=6, ack_timeout=200))
    # Every open fails: attempts, then ReconnectFailed; connect() starts over.
    write("sio_client_conn", "reconnect_attempts", cc_input([
        cc_join(a_main()),
        cc_op("HttpError", req_get()),
        cc_deadline(),
        cc_op("HttpResponse", req_get(), status(503), cc_resp_body(body_raw(b""))),
        cc_deadline(),
        cc_op("HttpError", req_get()),
        cc_op("Connect"),
        cc_op("Open", hs),
        cc_deliver(sp_accept(nsp_main())),
    ], transports=0, attempts=2, jitter=128))
    # Binary events with too few, enough and too many attachments, garbage,
    # then the server disconnects the namespace.
    write("sio_client_conn", "binary_garbage_server_disconnect", cc_input([
        cc_join(a_main()),
        cc_join(a_named("/b/c")),
        cc_op("Open", hs),
        cc_deliver(sp_accept(nsp_main()), sp_accept(nsp_named("/b/c"))),
        cc_deliver(sp_miscounted(nsp_main(), 2, 2, ack=3)),
        cc_op("Ack", a_main(), pick_latest(), u8(0)),
        cc_deliver(sp_packet(sio_disconnect(nsp_named("/b/c")))),
        cc_deliver(sp_miscounted(nsp_main(), 2, 1), sp_packet(sio_raw('42["x"'))),
        cc_deadline(),
        cc_op("Open", hs),
        cc_deliver(sp_accept(nsp_main(), sid=False)),
    ]))


def cc_resp_packets(*packets):
    return variant(1, 3) + vec(list(packets))


def cc_resp_body(body):
    return variant(2, 3) + body


def cc_ws_frame(frame):
    return variant(2, 3) + frame


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
    for name, wire in [
        ("connect_main", "0"),
        ("connect_auth", '0{"token":"abc"}'),
        ("connect_namespace", '0/admin,{"token":"abc"}'),
        ("connect_namespace_without_comma", "0/admin"),
        ("disconnect", "1/admin,"),
        ("event", '2["hello",1]'),
        ("event_with_ack", '2/admin,456["project:delete",123]'),
        ("event_number_name", "2[1,2]"),
        ("event_reserved_name", '2["connect"]'),
        ("event_whitespace", '2 [ "a" , {} ]'),
        ("explicit_main_namespace", '2/,["a"]'),
        ("unicode_namespace", '2/ünï,["x"]'),
        ("ack", "3/admin,456[]"),
        ("ack_leading_zeros", "3007[]"),
        ("ack_id_overflow", '318446744073709551616["a"]'),
        ("connect_error", '4{"message":"Not authorized"}'),
        ("connect_error_string", '4"nope"'),
        ("binary_event", '51-["hello",{"_placeholder":true,"num":0}]'),
        ("binary_ack", '62-/admin,456[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'),
        ("binary_zero_attachments", '50-["a"]'),
        ("binary_too_many", '511-["a"]'),
        ("binary_no_dash", '51["a"]'),
        ("unknown_type", "7"),
    ]:
        write("sio_packet", name, wire)


# --- server_driver ------------------------------------------------------------

BEHAVIOUR = ["Nothing", "Answer", "Echo", "Sleep", "Stall", "AskBack", "Broadcast",
             "Disconnect", "CloseConnection"]


def behaviour(name, arg=b""):
    return variant(BEHAVIOUR.index(name), len(BEHAVIOUR)) + arg


def d_setup(seed=1, socketio=False, ping_interval=999, ping_timeout=499, max_payload=4096,
            max_buffered=3, app_queue=1, ws_queue=7, body_timeout=999, header_timeout=4999,
            max_body_chunks=63, max_pending=63, compression=False, on_connect=None,
            behaviours=()):
    # The target takes ms = value % max + 1, queues = value % max + 1.
    return (u64(seed) + boolean(socketio) + u16(ping_interval) + u16(ping_timeout)
            + u16(max_payload) + u8(max_buffered) + u8(app_queue) + u8(ws_queue)
            + u16(body_timeout) + u16(header_timeout) + u8(max_body_chunks) + u8(max_pending)
            + boolean(compression) + (on_connect or behaviour("Nothing"))
            + vec(list(behaviours)))


D_STEPS = ["Handshake", "Poll", "Post", "Upgrade", "Frame", "Raw", "Shutdown", "Reset",
           "ToggleReading", "Advance", "NextTimer", "OpenGate"]


def d_step(name, *fields):
    return variant(D_STEPS.index(name), len(D_STEPS)) + b"".join(fields)


def d_handshake(conn, websocket=False):
    return d_step("Handshake", u8(conn), boolean(websocket))


def d_poll(conn, session=0):
    return d_step("Poll", u8(conn), u8(session))


def d_post(conn, body, session=0):
    return d_step("Post", u8(conn), u8(session), body)


def d_body_eio(spec):
    return variant(0, 4) + spec


def d_body_sio(*packets):
    return variant(1, 4) + vec(list(packets))


def d_body_burst(count, connect=False, acks=False):
    return variant(2, 4) + u16(count) + boolean(connect) + boolean(acks)


def d_body_partial(declared, sent):
    return variant(3, 4) + u16(declared) + u16(sent)


def d_frame(conn, frame):
    return d_step("Frame", u8(conn), frame)


def d_frame_eio(packet_spec):
    return variant(0, 6) + frame_packet(packet_spec)


def d_frame_sio(p):
    return variant(1, 6) + p


def d_frame_burst(count):
    return variant(2, 6) + u8(count)


def d_advance(ms):
    return d_step("Advance", u16(ms))


def d_input(setup, steps):
    return setup + rest(steps)


def server_driver_seeds():
    os.makedirs(os.path.join(HERE, "corpus", "server_driver"), exist_ok=True)
    # The polling wedge: an echo application whose send waits for room,
    # a queue of one, a POST of 200 messages, then long-polls that drain
    # the echoes. The session must hold the client, not wait for the
    # application, or nothing is ever answered again.
    write("server_driver", "polling_wedge", d_input(
        d_setup(behaviours=[behaviour("Answer")], max_buffered=0, app_queue=0), [
            d_handshake(0),
            d_post(1, d_body_burst(200)),
            d_poll(0), d_poll(0), d_poll(0), d_poll(0),
            d_step("NextTimer"),
            d_poll(0),
        ]))
    # The same over Socket.IO, with handlers that ask the client back,
    # stall at the gate and sleep, and a client that stops reading.
    write("server_driver", "socketio_polling", d_input(
        d_setup(socketio=True, behaviours=[
            behaviour("Answer"), behaviour("AskBack", option(u16(500))), behaviour("Stall"),
            behaviour("Sleep", u16(300)), behaviour("Echo"), behaviour("Broadcast")]), [
            d_handshake(0),
            d_post(1, d_body_sio(sio_connect(nsp_main()))),
            d_poll(0),
            d_post(1, d_body_burst(40, acks=True)),
            d_poll(0),
            d_post(1, d_body_sio(sio_ack(nsp_main(), pick_raw(0)), sio_ack(nsp_main(), pick_raw(1)))),
            d_step("ToggleReading", u8(0)),
            d_poll(0),
            d_advance(400),
            d_step("ToggleReading", u8(0)),
            d_step("OpenGate"),
            d_poll(0),
        ]))
    # Polling, then an upgrade to WebSocket (probe, upgrade), events over it,
    # a burst while the application is full, a frame claiming 2^63 bytes.
    write("server_driver", "socketio_upgrade", d_input(
        d_setup(socketio=True, behaviours=[behaviour("Answer"), behaviour("Stall")]), [
            d_handshake(0),
            d_poll(0),
            d_step("Upgrade", u8(2), u8(0)),
            d_frame(2, d_frame_eio(packet("PingProbe"))),
            d_frame(2, d_frame_eio(packet("Upgrade"))),
            d_frame(2, d_frame_sio(sio_connect(nsp_main()))),
            d_frame(2, d_frame_burst(50)),
            d_step("NextTimer"),
            d_frame(2, d_frame_eio(packet("Pong"))),
            d_frame(2, variant(5, 6) + u64(2**63)),
        ]))
    # A WebSocket handshake, a body that never arrives whole, raw garbage,
    # a reset and a half-close.
    write("server_driver", "slow_and_broken_peers", d_input(
        d_setup(behaviours=[behaviour("Echo"), behaviour("Sleep", u16(2000))]), [
            d_handshake(3, websocket=True),
            d_handshake(0),
            d_post(1, d_body_partial(500, 20)),
            d_step("Raw", u8(4), bytes_vec("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n")),
            d_frame(3, d_frame_eio(packet("Noop"))),
            d_step("Reset", u8(3)),
            d_step("Shutdown", u8(0)),
            d_advance(1500),
            d_poll(5),
        ]))


if __name__ == "__main__":
    codec_seeds()
    server_seeds()
    client_seeds()
    sio_binary_seeds()
    sio_server_conn_seeds()
    sio_client_conn_seeds()
    server_driver_seeds()
