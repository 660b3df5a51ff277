//! The outbox: the records of the transaction a checkpoint commits, kept in that
//! checkpoint's RocksDB batch until the transaction is known to have committed.
//!
//! The batch is written before the Kafka transaction commits, since a transaction that
//! committed ahead of state that was then lost would have its output written again. So a
//! crash between the two leaves state that is ahead of the output. The outbox closes that
//! gap: a restart that finds one asks the consumer group whether the transaction's
//! offsets, marked with the checkpoint's id, committed; if not, it writes the outbox again
//! in a new transaction.
//!
//! Encoding: a format byte (`2`), then per record: topic, key, payload (each a `u32`
//! big-endian length and bytes), a `u32` header count, then each header's name and value
//! the same way. The first format had no format byte and a `u16` header count; an outbox
//! in it (which begins with a topic's length, so with a zero byte) is still read. The count
//! widened when records began to carry their input's headers, which may be many.

use crate::output::{OutputRecord, OwnedRecord};

/// The meta-store key of the outbox of the last checkpoint.
pub const OUTBOX_KEY: &[u8] = b"outbox";

/// The first byte of an outbox in the current format.
const FORMAT: u8 = 2;

/// A record waiting in the outbox, with the topic it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Destination topic.
    pub topic: String,
    /// The record itself.
    pub record: OwnedRecord,
}

impl OutboxRecord {
    /// An owned copy of `record`.
    pub fn from_output(record: &OutputRecord<'_>) -> Self {
        OutboxRecord {
            topic: record.topic.to_string(),
            record: OwnedRecord::copy_of(record),
        }
    }

    /// Calls `send` with the record as output (of no particular epoch).
    pub fn with_output<R>(&self, send: impl FnOnce(&OutputRecord<'_>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> = self
            .record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        send(&OutputRecord {
            topic: &self.topic,
            key: &self.record.key,
            payload: &self.record.payload,
            headers: &headers,
            origin: None,
            epoch: 0,
        })
    }
}

/// Appends `record` to an encoded outbox (empty to begin one).
pub fn append(outbox: &mut Vec<u8>, record: &OutputRecord<'_>) {
    if outbox.is_empty() {
        outbox.push(FORMAT);
    }
    put_bytes(outbox, record.topic.as_bytes());
    put_bytes(outbox, record.key);
    put_bytes(outbox, record.payload);
    let count = u32::try_from(record.headers.len()).unwrap_or(u32::MAX);
    outbox.extend_from_slice(&count.to_be_bytes());
    for (name, value) in record.headers.iter().take(count as usize) {
        put_bytes(outbox, name.as_bytes());
        put_bytes(outbox, value);
    }
}

fn put_bytes(outbox: &mut Vec<u8>, bytes: &[u8]) {
    outbox.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    outbox.extend_from_slice(bytes);
}

/// Why an outbox could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the outbox is corrupt at byte {at}: {reason}")]
pub struct CorruptOutbox {
    /// Where reading failed.
    pub at: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

/// Decodes an outbox written by [`append`], in either format.
pub fn decode(mut bytes: &[u8]) -> Result<Vec<OutboxRecord>, CorruptOutbox> {
    let total = bytes.len();
    let wide_counts = match bytes.first() {
        Some(&FORMAT) => {
            bytes = &bytes[1..];
            true
        }
        // The first format: the first topic's length, whose high byte is zero.
        Some(0) | None => false,
        Some(_) => {
            return Err(CorruptOutbox {
                at: 0,
                reason: "unknown format",
            });
        }
    };
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let mut reader = Reader {
            bytes: &mut bytes,
            total,
        };
        let topic = reader.text()?;
        let key = reader.bytes()?.to_vec();
        let payload = reader.bytes()?.to_vec();
        let count = match wide_counts {
            true => u32::from_be_bytes(reader.array()?),
            false => u32::from(u16::from_be_bytes(reader.array()?)),
        };
        // Each header takes at least eight bytes: a count beyond that is corrupt, and must
        // not size an allocation.
        if count as usize > reader.bytes.len() / 8 {
            return Err(reader.fail("more headers than bytes left"));
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            headers.push((reader.text()?, reader.bytes()?.to_vec()));
        }
        records.push(OutboxRecord {
            topic,
            record: OwnedRecord {
                key,
                payload,
                headers,
            },
        });
    }
    Ok(records)
}

struct Reader<'a, 'b> {
    bytes: &'b mut &'a [u8],
    total: usize,
}

impl<'a> Reader<'a, '_> {
    fn fail(&self, reason: &'static str) -> CorruptOutbox {
        CorruptOutbox {
            at: self.total - self.bytes.len(),
            reason,
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptOutbox> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(self.fail("truncated length"));
        };
        *self.bytes = rest;
        Ok(*head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], CorruptOutbox> {
        let length = u32::from_be_bytes(self.array()?) as usize;
        if self.bytes.len() < length {
            return Err(self.fail("truncated field"));
        }
        let (field, rest) = self.bytes.split_at(length);
        *self.bytes = rest;
        Ok(field)
    }

    fn text(&mut self) -> Result<String, CorruptOutbox> {
        let field = self.bytes()?;
        String::from_utf8(field.to_vec()).map_err(|_| self.fail("text that is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(records: &[OutboxRecord]) -> Vec<u8> {
        let mut outbox = Vec::new();
        for waiting in records {
            waiting.with_output(|record| append(&mut outbox, record));
        }
        outbox
    }

    fn record() -> impl Strategy<Value = OutboxRecord> {
        (
            "[a-z.-]{1,20}",
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(
                (".{0,10}", proptest::collection::vec(any::<u8>(), 0..30)),
                0..4,
            ),
        )
            .prop_map(|(topic, key, payload, headers)| OutboxRecord {
                topic,
                record: OwnedRecord {
                    key,
                    payload,
                    headers,
                },
            })
    }

    #[test]
    fn an_outbox_of_the_first_format_is_still_read() {
        // One record of topic "t", key "k", payload "p" and the header ("h", "v"), with the
        // u16 header count and no format byte.
        let mut old = Vec::new();
        for field in [&b"t"[..], b"k", b"p"] {
            old.extend_from_slice(&(field.len() as u32).to_be_bytes());
            old.extend_from_slice(field);
        }
        old.extend_from_slice(&1u16.to_be_bytes());
        for field in [&b"h"[..], b"v"] {
            old.extend_from_slice(&(field.len() as u32).to_be_bytes());
            old.extend_from_slice(field);
        }
        let read = decode(&old).expect("the first format");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].topic, "t");
        assert_eq!(
            read[0].record.headers,
            vec![("h".to_string(), b"v".to_vec())]
        );
        assert_eq!(
            decode(&[9, 0, 0]).err().map(|error| error.reason),
            Some("unknown format")
        );
    }

    proptest! {
        #[test]
        fn records_read_back_as_written(records in proptest::collection::vec(record(), 0..20)) {
            prop_assert_eq!(decode(&encoded(&records)), Ok(records));
        }

        #[test]
        fn a_truncated_outbox_is_an_error_not_a_panic(
            records in proptest::collection::vec(record(), 1..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = encoded(&records);
            let length = cut.index(bytes.len());
            // Cutting at a record boundary leaves a shorter valid outbox; anywhere else
            // must be reported.
            if let Ok(read) = decode(&bytes[..length]) {
                prop_assert!(read.len() < records.len());
                prop_assert_eq!(&records[..read.len()], &read[..]);
            }
        }
    }
}
