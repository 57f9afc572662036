//! Generated `msg_id`s: random (version 4) UUIDs in their hyphenated lowercase text.
//!
//! One is made for every `sendMessage` without an id of its own, so it stays small: random
//! bytes from the thread's generator (`Uuid::new_v4` would ask the OS for each one) and a
//! formatting loop, instead of the uuid crate's unrolled encoder on the hot path.

/// A new random (v4) UUID, such as `"0d5e8c0a-4c3b-4f1e-9a7d-2b6f1c8e4a90"`.
pub(crate) fn new_msg_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes: [u8; 16] = rand::random();
    // RFC 9562: version 4 in the high nibble of byte 6, variant `10` in the top bits of byte 8.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::new_msg_id;

    #[test]
    fn ids_are_random_v4_uuids_in_canonical_text() {
        let ids: Vec<String> = (0..1000).map(|_| new_msg_id()).collect();
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(
                uuid.hyphenated().to_string(),
                *id,
                "canonical lowercase text"
            );
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
