//! What the node reads from JavaScript values: the page's `Node.start`
//! options and the relay's `/api/info`, field by field through `Reflect`.
//!
//! serde-wasm-bindgen read them before. Its deserializer, with serde's
//! error machinery (an "invalid type" error formats the float it got, which
//! alone pulls Rust's float printing into the wasm), was 12,848 bytes of the
//! brotli peer (issue #10's page-size goal). Reading two small objects by
//! hand is also stricter: an unknown option is refused instead of ignored.
//! Errors name the field and what it must be; they never echo a value.

use js_sys::{Array, Object, Reflect};
use shoal_proto::info::{IceServer, RelayInfo};
use wasm_bindgen::{JsCast as _, JsValue};

/// Most peers a node dials unless told otherwise.
const DEFAULT_MAX_PEERS: usize = 16;
/// The swarm joined unless told otherwise.
const DEFAULT_SWARM: &str = "default";

/// The fields of [`StartOptions`] as the page spells them.
const OPTION_NAMES: &str = "relay, swarm, maxPeers, iceServers, webrtcTimeoutMs, early";

/// Why a value is not what the node expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    #[error("expected an object")]
    NotObject,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("`{field}` must be {what}")]
    Type {
        field: &'static str,
        what: &'static str,
    },
    #[error("unknown field `{0}`, expected one of {OPTION_NAMES}")]
    Unknown(String),
}

/// Options of `Node.start`.
#[derive(Debug)]
pub struct StartOptions {
    /// The relay's origin, e.g. `https://shoal.example`. The node dials its
    /// libp2p WebSocket there (`wss` for `https`).
    pub relay: String,
    /// Swarm to join; peers only meet others in the same swarm.
    pub swarm: String,
    /// Most peers this node dials (others may still dial it).
    pub max_peers: usize,
    /// ICE servers (URLs, or `{ urls, username, credential }`). Default:
    /// what the relay's `/api/info` offers (its own STUN server first).
    pub ice_servers: Option<Vec<IceServer>>,
    /// Bound on one WebRTC connection attempt, in milliseconds.
    pub webrtc_timeout_ms: Option<u32>,
    /// What the page fetched and opened before the wasm was ready: a promise
    /// of `{ info, socket }` (see `crate::early`).
    pub early: Option<js_sys::Promise>,
}

impl StartOptions {
    pub fn read(value: &JsValue) -> Result<Self, FieldError> {
        let object = object(value)?;
        for key in Object::keys(object).iter() {
            let key = key.as_string().unwrap_or_default();
            if !OPTION_NAMES.split(", ").any(|name| name == key) {
                return Err(FieldError::Unknown(key));
            }
        }
        Ok(Self {
            relay: string(object, "relay")?.ok_or(FieldError::Missing("relay"))?,
            swarm: string(object, "swarm")?.unwrap_or_else(|| DEFAULT_SWARM.into()),
            max_peers: whole(object, "maxPeers", u32::MAX.into())?
                .map_or(DEFAULT_MAX_PEERS, |n| n as usize),
            ice_servers: optional_list(object, "iceServers", "a list of URLs or RTCIceServers")?
                .map(|list| list.iter().map(|v| ice_server(&v, true)).collect())
                .transpose()?,
            webrtc_timeout_ms: whole(object, "webrtcTimeoutMs", u32::MAX.into())?.map(|n| n as u32),
            early: get(object, "early")
                .map(|v| {
                    v.dyn_into::<js_sys::Promise>()
                        .map_err(|_| FieldError::Type {
                            field: "early",
                            what: "a Promise",
                        })
                })
                .transpose()?,
        })
    }
}

/// The relay's `/api/info`, as `Response.json()` gave it.
pub fn relay_info(value: &JsValue) -> Result<RelayInfo, FieldError> {
    let object = object(value)?;
    let required = |field| string(object, field)?.ok_or(FieldError::Missing(field));
    let strings = |field| -> Result<Vec<String>, FieldError> {
        let what = "a list of strings";
        optional_list(object, field, what)?
            .map(|list| {
                list.iter()
                    .map(|v| v.as_string().ok_or(FieldError::Type { field, what }))
                    .collect()
            })
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(RelayInfo {
        peer_id: required("peerId")?,
        p2p_path: required("p2pPath")?,
        stun_port: whole(object, "stunPort", u16::MAX.into())?.map(|n| n as u16),
        ice_servers: optional_list(object, "iceServers", "a list of RTCIceServers")?
            .map(|list| list.iter().map(|v| ice_server(&v, false)).collect())
            .transpose()?
            .unwrap_or_default(),
        listen_addrs: strings("listenAddrs")?,
        version: string(object, "version")?.unwrap_or_default(),
    })
}

/// An RTCIceServer (`urls` a URL or a list of them), or with `bare_url` a
/// URL alone, as the page may give it.
fn ice_server(value: &JsValue, bare_url: bool) -> Result<IceServer, FieldError> {
    if let (true, Some(url)) = (bare_url, value.as_string()) {
        return Ok(IceServer {
            urls: vec![url],
            username: None,
            credential: None,
        });
    }
    let object = object(value).map_err(|_| FieldError::Type {
        field: "iceServers",
        what: "a list of URLs or RTCIceServers",
    })?;
    let what = "a URL or a list of URLs";
    let urls = get(object, "urls").ok_or(FieldError::Missing("urls"))?;
    let urls = match urls.as_string() {
        Some(url) => vec![url],
        None => urls
            .dyn_ref::<Array>()
            .ok_or(FieldError::Type {
                field: "urls",
                what,
            })?
            .iter()
            .map(|v| {
                v.as_string().ok_or(FieldError::Type {
                    field: "urls",
                    what,
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(IceServer {
        urls,
        username: string(object, "username")?,
        credential: string(object, "credential")?,
    })
}

fn object(value: &JsValue) -> Result<&Object, FieldError> {
    match value.dyn_ref::<Object>() {
        Some(o) if !value.is_function() && !Array::is_array(value) => Ok(o),
        _ => Err(FieldError::NotObject),
    }
}

/// `object[field]`, or `None` when it is undefined or null.
pub(crate) fn get(object: &Object, field: &str) -> Option<JsValue> {
    Reflect::get(object, &JsValue::from_str(field))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn string(object: &Object, field: &'static str) -> Result<Option<String>, FieldError> {
    get(object, field)
        .map(|v| {
            v.as_string().ok_or(FieldError::Type {
                field,
                what: "a string",
            })
        })
        .transpose()
}

/// A whole number from 0 to `max`.
fn whole(object: &Object, field: &'static str, max: u64) -> Result<Option<u64>, FieldError> {
    get(object, field)
        .map(|v| {
            v.as_f64()
                .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= max as f64)
                .map(|n| n as u64)
                .ok_or(FieldError::Type {
                    field,
                    what: "a whole number in range",
                })
        })
        .transpose()
}

fn optional_list(
    object: &Object,
    field: &'static str,
    what: &'static str,
) -> Result<Option<Array>, FieldError> {
    get(object, field)
        .map(|v| {
            v.dyn_into::<Array>()
                .map_err(|_| FieldError::Type { field, what })
        })
        .transpose()
}

#[cfg(test)]
mod tests;
