//! shoal's own rendezvous server (`/rendezvous/1.0.0`). rust-libp2p's server
//! has no hooks for policy and reads only the legacy signed-peer-record
//! envelope; this one accepts both envelope forms and applies shoal's policy.
//!
//! # Layout
//! - [`registry`]: the registrations and every rule, sans-IO (`now` in,
//!   answers out), unit-tested natively.
//! - [`protocol`]: the wire messages (protobuf via prost), parsing requests,
//!   building answers, checking signed peer records.
//! - [`behaviour`]: the thin libp2p driver (request-response streams,
//!   connection events, a sweep timer).

pub mod behaviour;
pub mod protocol;
pub mod registry;

pub use behaviour::{Behaviour, Event, PROTOCOL};
pub use registry::{Policy, Refusal, Registry};
