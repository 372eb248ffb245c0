//! Fuzzes node-RPC framing: whatever bytes a peer sends, the frame reader and the datagram
//! decoder never panic, and every frame they accept re-encodes to exactly the bytes it was
//! read from (garbage is refused, never taken for some other frame).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::rpc::{decode_datagram, encode_frame, FrameReader};

fuzz_target!(|data: &[u8]| {
    let mut input = FrameReader::new(data.to_vec());
    let mut at = 0;
    while let Ok(Some(frame)) = input.next_frame() {
        let encoded = encode_frame(&frame);
        assert_eq!(&data[at..at + encoded.len()], &encoded[..]);
        at += encoded.len();
    }
    if let Ok(frame) = decode_datagram(data) {
        assert_eq!(encode_frame(&frame), data);
    }
});
