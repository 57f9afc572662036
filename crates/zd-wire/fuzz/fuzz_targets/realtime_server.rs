//! Fuzzes `zd_wire::realtime::ServerFrame::decode`: no panics, and encoding of any decoded frame is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zd_wire::realtime::ServerFrame;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(frame) = ServerFrame::decode(text) else {
        return;
    };
    let first = frame.encode().expect("a decoded frame encodes");
    let again = ServerFrame::decode(&first).expect("our own output decodes");
    assert_eq!(first, again.encode().expect("a decoded frame encodes"));
});
