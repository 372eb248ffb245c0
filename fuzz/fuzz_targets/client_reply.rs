//! Fuzzes the API reply parser of the Rust client (`client::protocol::parse_reply`), which
//! decodes objects with the same `lang::wire` decoder the server uses for uploads. Whatever
//! parses must re-encode and parse back to the same shape.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((reply, used))) = client::protocol::parse_reply(data) {
        assert!(used <= data.len());
        let again = match &reply.result {
            Ok(v) => client::protocol::encode_reply(reply.session, &reply.messages, Ok(v)),
            Err(e) => client::protocol::encode_reply(reply.session, &reply.messages, Err(e)),
        };
        let (back, _) = client::protocol::parse_reply(&again)
            .expect("a re-encoded reply parses")
            .expect("whole");
        assert_eq!(back.session, reply.session);
        assert_eq!(back.result.is_ok(), reply.result.is_ok());
    }
});
