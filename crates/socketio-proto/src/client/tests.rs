use super::*;
use alloc::string::ToString;

#[test]
fn connect_payload_merges_recovery_fields_first() {
    let auth = Str::from(r#"{"token":"t"}"#);
    let pid = Str::from("p1");
    let offset = Str::from("o\"9");
    assert_eq!(connect_payload(Some(&auth), None, None), Some(auth.clone()));
    assert_eq!(connect_payload(None, None, None), None);
    assert_eq!(
        connect_payload(Some(&auth), Some(&pid), Some(&offset))
            .unwrap()
            .as_str(),
        r#"{"pid":"p1","offset":"o\"9","token":"t"}"#
    );
    assert_eq!(
        connect_payload(None, Some(&pid), None).unwrap().as_str(),
        r#"{"pid":"p1"}"#
    );
    assert_eq!(
        connect_payload(Some(&Str::from(" { } ")), Some(&pid), Some(&offset))
            .unwrap()
            .as_str(),
        r#"{"pid":"p1","offset":"o\"9"}"#
    );
}

#[test]
fn connect_reply_needs_a_sid() {
    let reply = parse_connect_reply(r#"{"sid":"s","pid":"p"}"#).unwrap();
    assert_eq!((reply.sid.as_str(), reply.pid.as_deref()), ("s", Some("p")));
    assert!(parse_connect_reply(r#"{"sid":"s"}"#).unwrap().pid.is_none());
    assert!(parse_connect_reply("{}").is_none());
    assert!(parse_connect_reply("[]").is_none());
}

#[test]
fn last_string_argument_reads_recovery_offsets() {
    assert_eq!(
        last_string_argument(r#"["ev",1,{"a":"b"},"off-1"]"#).as_deref(),
        Some("off-1")
    );
    assert_eq!(last_string_argument(r#"["ev","x",2]"#), None);
    assert_eq!(last_string_argument(r#"["ev",["nested"]]"#), None);
    assert_eq!(last_string_argument("not json"), None);
    assert_eq!(last_string_argument("[]"), None);
}

#[test]
fn disconnect_reasons_use_nodes_strings() {
    assert_eq!(
        DisconnectReason::ServerDisconnect.as_node_str(),
        "io server disconnect"
    );
    assert!(!DisconnectReason::ServerDisconnect.will_reconnect());
    assert!(DisconnectReason::Transport(CloseReason::PingTimeout).will_reconnect());
    assert_eq!(AckError::Timeout.to_string(), "operation has timed out");
}
