//! Ids shaped like the real service's: base64 of a JSON array of `[key, value]` pairs.
//!
//! Clients must treat ids as opaque strings; making ours look like the real ones (and never like
//! numbers) catches clients that assume otherwise.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng as _;

/// The kind of object an id names; the `type` pair of the encoded id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// An agent (`[["localId", raw], ["type", "AGENT"]]`).
    Agent,
    /// A department.
    Department,
    /// A visitor.
    Visitor,
    /// A visitor channel (`[["lcId", raw], ["scribeId", ..], ["type", "VISITOR_CHANNEL"]]`).
    VisitorChannel,
    /// A chat message.
    ChatMessage,
    /// A member-join log.
    MemberJoin,
    /// A member-leave log.
    MemberLeave,
}

impl IdKind {
    const fn tag(self) -> &'static str {
        match self {
            Self::Agent => "AGENT",
            Self::Department => "DEPARTMENT",
            Self::Visitor => "VISITOR",
            Self::VisitorChannel => "VISITOR_CHANNEL",
            Self::ChatMessage => "CHAT_MESSAGE",
            Self::MemberJoin => "MEMBER_JOIN",
            Self::MemberLeave => "MEMBER_LEAVE",
        }
    }

    const fn key(self) -> &'static str {
        match self {
            Self::VisitorChannel => "lcId",
            _ => "localId",
        }
    }
}

/// Encodes a raw key as the public id of `kind`.
pub(crate) fn encode(kind: IdKind, raw: &str) -> String {
    let pairs = vec![[kind.key(), raw], ["type", kind.tag()]];
    encode_pairs(&pairs)
}

/// Encodes a visitor channel id, which also carries the scribe id (seen in real payloads).
pub(crate) fn encode_channel(lc_id: &str, scribe_id: &str) -> String {
    let pairs = vec![
        ["lcId", lc_id],
        ["scribeId", scribe_id],
        ["type", IdKind::VisitorChannel.tag()],
    ];
    encode_pairs(&pairs)
}

fn encode_pairs(pairs: &[[&str; 2]]) -> String {
    // Serializing a slice of string pairs cannot fail.
    let json = serde_json::to_string(pairs).unwrap_or_default();
    STANDARD.encode(json)
}

/// Decodes a public id of `kind` back to its raw key; `None` for anything malformed or of
/// another kind.
pub(crate) fn decode(kind: IdKind, id: &str) -> Option<String> {
    let bytes = STANDARD.decode(id.trim()).ok()?;
    let pairs: Vec<(String, String)> = serde_json::from_slice(&bytes).ok()?;
    let tag = pairs.iter().find(|(k, _)| k == "type")?;
    if tag.1 != kind.tag() {
        return None;
    }
    pairs
        .into_iter()
        .find(|(k, _)| k == kind.key())
        .map(|(_, v)| v)
}

/// A random string of `len` characters from the alphabet the real raw ids use.
pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A random decimal string of `len` digits without a leading zero.
pub(crate) fn random_digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|i| {
            let low = if i == 0 { 1 } else { 0 };
            char::from(b'0' + rng.random_range(low..10u8))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_id_matches_the_real_shape() {
        let id = encode_channel(
            "#supportchat:1179974-1EIla6RJpWHZuzF",
            "2302.1179974.TV3zbZizRbPcq",
        );
        assert_eq!(
            id,
            "W1sibGNJZCIsIiNzdXBwb3J0Y2hhdDoxMTc5OTc0LTFFSWxhNlJKcFdIWnV6RiJdLFsic2NyaWJlSWQiLCIyMzAyLjExNzk5NzQuVFYzemJaaXpSYlBjcSJdLFsidHlwZSIsIlZJU0lUT1JfQ0hBTk5FTCJdXQ=="
        );
        assert_eq!(
            decode(IdKind::VisitorChannel, &id).as_deref(),
            Some("#supportchat:1179974-1EIla6RJpWHZuzF")
        );
    }

    #[test]
    fn message_id_matches_the_real_shape() {
        let id = encode(
            IdKind::ChatMessage,
            "#supportchat:1179974-1EIla6RJpWHZuzF1675666127.859",
        );
        assert_eq!(
            id,
            "W1sibG9jYWxJZCIsIiNzdXBwb3J0Y2hhdDoxMTc5OTc0LTFFSWxhNlJKcFdIWnV6RjE2NzU2NjYxMjcuODU5Il0sWyJ0eXBlIiwiQ0hBVF9NRVNTQUdFIl1d"
        );
    }

    #[test]
    fn decode_rejects_other_kinds_and_garbage() {
        let agent = encode(IdKind::Agent, "6717174888");
        assert_eq!(decode(IdKind::Agent, &agent).as_deref(), Some("6717174888"));
        assert_eq!(decode(IdKind::Department, &agent), None);
        assert_eq!(decode(IdKind::Agent, "12345"), None);
        assert_eq!(decode(IdKind::Agent, "!!!"), None);
    }
}
