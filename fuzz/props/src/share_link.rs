//! Share links and share id text: what parses names an id whose text form
//! parses back to it, and a link made for an id parses back to that id.

use std::str::FromStr;

use shoal_share::manifest::SHARE_ID_TEXT_LEN;
use shoal_share::{make_link, parse_link, LinkError, ShareId};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = ShareId::from_str(text) {
        assert_eq!(text.len(), SHARE_ID_TEXT_LEN);
        let canonical = id.to_string();
        assert_eq!(canonical, text.to_ascii_lowercase());
        assert_eq!(canonical.parse::<ShareId>(), Ok(id));
    }
    match parse_link(text) {
        Ok(id) => {
            assert_eq!(id.to_string().parse::<ShareId>(), Ok(id));
            // The link's text names the id somewhere.
            let lower = text.to_ascii_lowercase();
            assert!(lower.contains(&id.to_string()), "{text:?} → {id}");
        }
        Err(LinkError::MissingShare | LinkError::BadShareId(_)) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
    // Any origin and swarm name: the link carries the id through.
    let (origin, swarm) = text.split_once('\n').unwrap_or((text, ""));
    let id = ShareId::of_encoded(data);
    let link = make_link(origin, swarm, &id);
    if !origin.contains('#') {
        assert_eq!(parse_link(&link), Ok(id), "{link:?}");
    }
}
