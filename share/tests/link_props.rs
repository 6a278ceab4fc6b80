//! Property tests of share links (`shoal_share::link`) through the public
//! API: a link made for any id, origin and swarm name parses back to that id,
//! the swarm name is percent-encoded to unreserved characters, and the id's
//! text form parses in either case. The fuzz target `share_link` (fuzz/)
//! checks the same on mutated input.

use proptest::prelude::*;
use shoal_share::{make_link, parse_link, ShareId};

proptest! {
    #[test]
    fn made_links_parse_back(
        raw in any::<[u8; 32]>(),
        origin in "[^#]{0,40}",
        swarm in ".{0,40}",
    ) {
        let id = ShareId::from_bytes(raw);
        let link = make_link(&origin, &swarm, &id);
        prop_assert_eq!(parse_link(&link), Ok(id));
        prop_assert_eq!(parse_link(&format!("  {link}\n")), Ok(id));
    }

    #[test]
    fn swarm_names_are_percent_encoded(swarm in ".{0,40}") {
        let id = ShareId::from_bytes([3; 32]);
        let link = make_link("https://x", &swarm, &id);
        let encoded = link
            .strip_prefix("https://x/?swarm=")
            .and_then(|rest| rest.split_once("#share="))
            .map(|(encoded, _)| encoded)
            .expect("the link's shape");
        prop_assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        // Decoding gives the name back.
        let mut bytes = Vec::new();
        let mut rest = encoded.as_bytes();
        while let Some((&b, later)) = rest.split_first() {
            if b == b'%' {
                let hex = std::str::from_utf8(&later[..2]).expect("ascii");
                bytes.push(u8::from_str_radix(hex, 16).expect("hex"));
                rest = &later[2..];
            } else {
                bytes.push(b);
                rest = later;
            }
        }
        prop_assert_eq!(String::from_utf8(bytes).expect("utf-8"), swarm);
    }

    #[test]
    fn bare_ids_and_fragments_parse_in_either_case(raw in any::<[u8; 32]>(), upper in any::<bool>()) {
        let id = ShareId::from_bytes(raw);
        let mut text = id.to_string();
        if upper {
            text = text.to_ascii_uppercase();
        }
        prop_assert_eq!(parse_link(&text), Ok(id));
        prop_assert_eq!(parse_link(&format!("#share={text}")), Ok(id));
        prop_assert_eq!(parse_link(&format!("x=1&share={text}")), Ok(id));
    }
}
