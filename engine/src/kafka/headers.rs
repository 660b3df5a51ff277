//! A Kafka record's headers, read without trusting their names to be UTF-8.
//!
//! Kafka stores a header's name as bytes and checks nothing; a producer outside the JVM can
//! write any. rdkafka 0.39's `Headers::iter` and `get` turn each name into a `&str` with an
//! `unwrap`, so a record with such a header would panic the worker that reads it, and
//! again after every restart: the engine could never get past it. The records whose
//! headers Sluice copies are exactly the ones that go to a late or dead-letter topic, so
//! this reads them through librdkafka's own accessor, and a name that is not UTF-8 is kept
//! with its bad bytes replaced (U+FFFD).

use std::ffi::{CStr, c_char, c_void};

use rdkafka::bindings::{rd_kafka_header_cnt, rd_kafka_header_get_all, rd_kafka_headers_t};
use rdkafka::message::BorrowedHeaders;
use rdkafka::types::RDKafkaRespErr;

/// Every header of `headers`, name and value, in order (a header without a value has an
/// empty one).
pub fn read_all(headers: &BorrowedHeaders) -> Vec<(String, Vec<u8>)> {
    // rdkafka hands out a `&BorrowedHeaders` that is the `rd_kafka_headers_t` itself, as
    // its own accessors assume (`BorrowedHeaders::as_native_ptr` is this cast).
    let native = headers as *const BorrowedHeaders as *const rd_kafka_headers_t;
    // SAFETY: `native` points to live headers for as long as `headers` is borrowed.
    let count = unsafe { rd_kafka_header_cnt(native) };
    let mut all = Vec::with_capacity(count);
    for index in 0..count {
        let mut name: *const c_char = std::ptr::null();
        let mut value: *const c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `index` is below the count, and the out-pointers are valid locals.
        let answer =
            unsafe { rd_kafka_header_get_all(native, index, &mut name, &mut value, &mut size) };
        if answer != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: librdkafka keeps every name NUL-terminated and every value `size` bytes
        // long, alive as long as the headers are; both are copied out before the borrow ends.
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        let value = match value.is_null() {
            true => Vec::new(),
            false => unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec(),
        };
        all.push((name, value));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::bindings::{rd_kafka_header_add, rd_kafka_headers_destroy, rd_kafka_headers_new};
    use rdkafka::message::{Header, OwnedHeaders};

    #[test]
    fn headers_read_back_as_written_with_or_without_a_value() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some("00-abc-01"),
            })
            .insert(Header::<&[u8]> {
                key: "empty",
                value: None,
            })
            .insert(Header {
                key: "binary",
                value: Some(&[0u8, 255, 7][..]),
            });
        assert_eq!(
            read_all(headers.as_borrowed()),
            vec![
                ("traceparent".to_string(), b"00-abc-01".to_vec()),
                ("empty".to_string(), Vec::new()),
                ("binary".to_string(), vec![0, 255, 7]),
            ]
        );
    }

    #[test]
    fn a_name_that_is_not_utf8_is_read_not_a_panic() {
        // rdkafka's own API cannot make such a header; librdkafka's can, as any producer.
        let name: &[u8] = b"bad\xffname";
        let value: &[u8] = b"v";
        // SAFETY: the headers are made, filled, read through a borrow and destroyed here.
        unsafe {
            let native = rd_kafka_headers_new(1);
            rd_kafka_header_add(
                native,
                name.as_ptr().cast(),
                name.len() as isize,
                value.as_ptr().cast(),
                value.len() as isize,
            );
            let borrowed = &*(native as *const BorrowedHeaders);
            let read = read_all(borrowed);
            rd_kafka_headers_destroy(native);
            assert_eq!(read, vec![("bad\u{fffd}name".to_string(), b"v".to_vec())]);
        }
    }
}
