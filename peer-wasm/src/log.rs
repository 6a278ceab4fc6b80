//! A small `tracing` subscriber that writes events to the browser console.
//!
//! `tracing-wasm` would do, but it brings `tracing-subscriber` and its
//! machinery; this is all the peer needs: level filter, message, fields,
//! target. Spans are not tracked.

use std::fmt::Write as _;

use tracing::{
    field::{Field, Visit},
    span, Event, Level, Metadata, Subscriber,
};

pub struct ConsoleSubscriber {
    max: Level,
}

impl ConsoleSubscriber {
    pub fn new(max: Level) -> Self {
        Self { max }
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    // Floats are written by JS's own `Number#toString`: `f64`'s Rust
    // formatting (Grisu and Dragon4) is ~15 KB of wasm the page never
    // needs otherwise.
    fn record_f64(&mut self, field: &Field, value: f64) {
        let text: String = js_sys::Number::from(value)
            .to_string(10)
            .map(String::from)
            .unwrap_or_default();
        self.record_str(field, &text);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for ConsoleSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        // Milliseconds since navigation start: start-up is easy to follow.
        let t = web_sys::window()
            .and_then(|w| w.performance())
            .map(|p| p.now() as u64)
            .unwrap_or(0);
        let line = format!("[{t} ms] {} {}: {}", meta.level(), meta.target(), fields.0);
        let line = wasm_bindgen::JsValue::from_str(&line);
        match *meta.level() {
            Level::ERROR => web_sys::console::error_1(&line),
            Level::WARN => web_sys::console::warn_1(&line),
            _ => web_sys::console::log_1(&line),
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// `error` and each of its sources, joined by ": " (libp2p's errors often
/// keep the cause, e.g. why a signaling attempt failed, in `source()` only).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}
