//! Reading `Node.start` options and `/api/info` from JS values (`make wasm-unit`).

use js_sys::JSON;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use super::{relay_info, FieldError, StartOptions};

fn js(json: &str) -> JsValue {
    JSON::parse(json).expect("test JSON")
}

#[wasm_bindgen_test]
fn options_are_read_with_their_defaults() {
    let o = StartOptions::read(&js(r#"{"relay":"https://r.example"}"#)).unwrap();
    assert_eq!(
        (o.relay.as_str(), o.swarm.as_str(), o.max_peers),
        ("https://r.example", "default", 16)
    );
    assert!(o.ice_servers.is_none() && o.webrtc_timeout_ms.is_none());

    let o = StartOptions::read(&js(
        r#"{"relay":"http://h","swarm":"s","maxPeers":2,"webrtcTimeoutMs":null,
            "iceServers":["stun:a:1",{"urls":"turn:b:2","username":"u","credential":"c"},{"urls":["stun:c:3","stun:d:4"]}]}"#,
    ))
    .unwrap();
    assert_eq!(
        (o.swarm.as_str(), o.max_peers, o.webrtc_timeout_ms),
        ("s", 2, None)
    );
    let servers = o.ice_servers.unwrap();
    assert_eq!(servers.len(), 3);
    assert_eq!(servers[0].urls, ["stun:a:1"]);
    assert_eq!(
        (
            servers[1].username.as_deref(),
            servers[1].credential.as_deref()
        ),
        (Some("u"), Some("c"))
    );
    assert_eq!(servers[2].urls, ["stun:c:3", "stun:d:4"]);
}

#[wasm_bindgen_test]
fn bad_options_are_named() {
    let err = |json: &str| StartOptions::read(&js(json)).unwrap_err();
    assert_eq!(
        err(r#"{"relay":"h","maxPeer":3}"#),
        FieldError::Unknown("maxPeer".into())
    );
    assert_eq!(err(r#"{"swarm":"s"}"#), FieldError::Missing("relay"));
    assert_eq!(err("[]"), FieldError::NotObject);
    assert_eq!(err("3"), FieldError::NotObject);
    for bad in ["1.5", "-1", "\"3\"", "1e100"] {
        assert!(
            matches!(
                err(&format!(r#"{{"relay":"h","maxPeers":{bad}}}"#)),
                FieldError::Type {
                    field: "maxPeers",
                    ..
                }
            ),
            "maxPeers {bad}"
        );
    }
    assert!(matches!(
        err(r#"{"relay":"h","early":{"info":{}}}"#),
        FieldError::Type { field: "early", .. }
    ));
    assert!(matches!(
        err(r#"{"relay":7}"#),
        FieldError::Type { field: "relay", .. }
    ));
    assert!(matches!(
        err(r#"{"relay":"h","iceServers":"stun:a"}"#),
        FieldError::Type {
            field: "iceServers",
            ..
        }
    ));
    assert!(matches!(
        err(r#"{"relay":"h","iceServers":[{"urls":[1]}]}"#),
        FieldError::Type { field: "urls", .. }
    ));
    assert_eq!(
        err(r#"{"relay":"h","iceServers":[{}]}"#),
        FieldError::Missing("urls")
    );
    // The message names the field, never the value.
    assert_eq!(
        err(r#"{"relay":"h","maxPeers":0.25}"#).to_string(),
        "`maxPeers` must be a whole number in range"
    );
}

#[wasm_bindgen_test]
fn relay_info_is_read_as_the_relay_writes_it() {
    let info = shoal_proto::info::RelayInfo::example();
    let text = format!(
        r#"{{"peerId":"{}","p2pPath":"{}","stunPort":{},"iceServers":[{{"urls":["{}"],"username":"{}","credential":"{}"}}],"listenAddrs":["{}"],"version":"{}"}}"#,
        info.peer_id,
        info.p2p_path,
        info.stun_port.unwrap(),
        info.ice_servers[0].urls[0],
        info.ice_servers[0].username.as_deref().unwrap(),
        info.ice_servers[0].credential.as_deref().unwrap(),
        info.listen_addrs[0],
        info.version
    );
    assert_eq!(relay_info(&js(&text)).unwrap(), info);
    let none = relay_info(&js(r#"{"peerId":"p","p2pPath":"/p2p","stunPort":null}"#)).unwrap();
    assert_eq!((none.stun_port, none.ice_servers.len()), (None, 0));
    assert_eq!(
        relay_info(&js(r#"{"p2pPath":"/p2p"}"#)).unwrap_err(),
        FieldError::Missing("peerId")
    );
    assert!(matches!(
        relay_info(&js(r#"{"peerId":"p","p2pPath":"/p2p","stunPort":70000}"#)).unwrap_err(),
        FieldError::Type {
            field: "stunPort",
            ..
        }
    ));
}
