//! Share links: `<origin>/?swarm=<name>#share=<id>`.
//!
//! The share id is the capability: whoever holds it can fetch the file, and
//! nobody can list shares. It lives in the URL fragment, which browsers never
//! send to the server, so the relay that serves the page never learns it.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::ShareId;

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error("the link has no #share=… part")]
    MissingShare,
    #[error("the link's share id is malformed: {0}")]
    BadShareId(#[from] crate::ShareIdParseError),
}

/// Builds the link for `share` on the relay at `origin` (no trailing slash
/// needed) in swarm `swarm`.
pub fn make_link(origin: &str, swarm: &str, share: &ShareId) -> String {
    format!(
        "{}/?swarm={}#share={share}",
        origin.trim_end_matches('/'),
        utf8_percent_encode(swarm, COMPONENT)
    )
}

/// Finds the share id in a link, or in a bare fragment (`#share=…` or
/// `share=…`), or takes a bare id.
pub fn parse_link(link: &str) -> Result<ShareId, LinkError> {
    let link = link.trim();
    let fragment = match link.split_once('#') {
        Some((_, f)) => f,
        None => link,
    };
    let value = fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("share="))
        .or_else(|| (!fragment.contains('=') && !fragment.contains('/')).then_some(fragment))
        .filter(|v| !v.is_empty())
        .ok_or(LinkError::MissingShare)?;
    Ok(value.parse()?)
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> ShareId {
        ShareId::from_bytes([7; 32])
    }

    #[test]
    fn round_trip() {
        let link = make_link("http://127.0.0.1:8080/", "my swarm", &id());
        assert!(
            link.starts_with("http://127.0.0.1:8080/?swarm=my%20swarm#share="),
            "{link}"
        );
        assert_eq!(parse_link(&link), Ok(id()));
        assert_eq!(parse_link(&format!("#share={}", id())), Ok(id()));
        assert_eq!(parse_link(&id().to_string()), Ok(id()));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse_link("http://x/?swarm=a"),
            Err(LinkError::MissingShare)
        );
        assert_eq!(
            parse_link("http://x/#other=1"),
            Err(LinkError::MissingShare)
        );
        assert!(matches!(
            parse_link("http://x/#share=abc"),
            Err(LinkError::BadShareId(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_links_never_panic(s in ".{0,200}") {
            let _ = parse_link(&s);
        }
    }
}
