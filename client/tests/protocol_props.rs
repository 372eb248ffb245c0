//! Property tests for the API framing the server and this client share: every reply
//! round-trips through `encode_reply` / `parse_reply`, every strict prefix asks for more
//! bytes, and arbitrary bytes give an error or a reply — never a panic.

use client::protocol::{encode_reply, encode_request, parse_reply};
use proptest::prelude::*;
use value::column::{Column, ColumnData};
use value::types::DataType;
use value::Value;

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::int),
        (-1e9f64..1e9).prop_map(Value::double),
        "[a-z ]{0,12}".prop_map(|s| Value::string(&s)),
        prop::collection::vec(any::<i32>(), 0..30).prop_map(|v| Value::Vector(Column {
            ty: DataType::Int,
            data: ColumnData::I32(v)
        })),
        prop::collection::vec("[A-D]{1,3}", 0..30)
            .prop_map(|v| Value::Vector(Column::from_strings(DataType::Symbol, &v))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn replies_round_trip(
        session in any::<u64>(),
        messages in prop::collection::vec("[ -~]{0,20}", 0..3),
        values in prop::collection::vec(arb_value(), 0..4),
        error in prop::option::of("[ -~]{1,40}"),
    ) {
        let bytes = match &error {
            Some(e) => encode_reply(session, &messages, Err(e)),
            None => encode_reply(session, &messages, Ok(&values)),
        };
        let (reply, used) = parse_reply(&bytes).unwrap().expect("a whole reply");
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(reply.session, session);
        prop_assert_eq!(&reply.messages, &messages);
        match (&reply.result, &error) {
            (Err(got), Some(want)) => prop_assert_eq!(got.trim(), want.trim()),
            (Ok(got), None) => {
                prop_assert_eq!(got.len(), values.len());
                for (g, w) in got.iter().zip(&values) {
                    prop_assert_eq!(value::display::format(g), value::display::format(w));
                }
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
        // An error text that starts with "OK" would be read as success: the server never
        // sends one (its messages start with a tag, a position or a function name).
        for cut in 0..bytes.len() {
            match parse_reply(&bytes[..cut]) {
                Ok(None) => {}
                other => prop_assert!(false, "prefix {} gave {:?}", cut, other),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_reply(&data);
    }

    #[test]
    fn requests_carry_their_text_length(text in "[ -~]{0,100}", n in any::<u64>()) {
        let r = encode_request(n, &text, &[]).unwrap();
        let header = String::from_utf8_lossy(&r[..r.iter().position(|b| *b == b'\n').unwrap()]).to_string();
        let parts: Vec<&str> = header.split_whitespace().collect();
        prop_assert_eq!(parts[0], "API");
        prop_assert_eq!(parts[1].parse::<u64>().unwrap(), n);
        prop_assert_eq!(parts[2].parse::<usize>().unwrap(), text.len());
    }
}
