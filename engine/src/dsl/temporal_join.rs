//! Stream-table joins as of each record's event time: Kafka Streams' `KStream#join(KTable)`
//! and `leftJoin`, made repeatable the way Flink's temporal joins are.
//!
//! Kafka Streams joins a record with whatever the table holds when the record is
//! processed, so a replay, which reads the two topics at other relative speeds, can
//! enrich differently. Here each record meets the table's row for its key as it stood at
//! the record's event time: the table's changes and the stream's records are applied in
//! event-time order ([`Stream::in_event_time_with`]), per key, on the key's worker. A row
//! changed at the same instant as a record is seen by it only when the table's source
//! was declared before the stream's (ties go by source, partition and offset).

use super::stream::Stream;
use super::table::Table;
use crate::record::Data;
use crate::render::sequence::Either;

impl<'scope, T: Data> Stream<'scope, T> {
    /// Joins each record with `table`'s row under the record's key, as the table stood at
    /// the record's event time; a record whose key has no row then is dropped. `joiner`
    /// makes the output from the two; it keeps the record's key and event time.
    pub fn join_table<V: Data, O: Data>(
        &self,
        table: &Table<'scope, V>,
        name: &str,
        joiner: impl Fn(T, &V) -> O + 'static,
    ) -> Stream<'scope, O> {
        self.left_join_table(table, name, move |value, row| {
            row.map(|row| joiner(value, row))
        })
        .filter_map(|joined| joined)
    }

    /// As [`Stream::join_table`], but every record is kept: `joiner` gets `None` when the
    /// table had no row for its key at its event time.
    pub fn left_join_table<V: Data, O: Data>(
        &self,
        table: &Table<'scope, V>,
        name: &str,
        joiner: impl Fn(T, Option<&V>) -> O + 'static,
    ) -> Stream<'scope, O> {
        let key_name = self.key_name.clone();
        let mut joined = self.in_event_time_with(&table.changes()).process_by_key(
            name,
            &key_name,
            move |rows, arrival, out| match arrival.value {
                Either::Left(value) => {
                    let joined = joiner(value, rows.get(&arrival.key));
                    out.push((arrival.key, joined));
                }
                Either::Right(change) => match change.new {
                    Some(row) => rows.insert(&arrival.key, row),
                    None => {
                        rows.remove(&arrival.key);
                    }
                },
            },
        );
        // Only the stream's records come out, each in its own envelope.
        joined.lineage = self.lineage.clone();
        joined
    }
}
