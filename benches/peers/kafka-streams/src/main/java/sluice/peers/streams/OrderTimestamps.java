// Event time from the order's own `timestamp`, read from the record already deserialized.
package sluice.peers.streams;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

public final class OrderTimestamps implements TimestampExtractor {
  @Override
  public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
    if (record.value() instanceof Order order && order.timestamp() != null) {
      try {
        return order.eventTimeMillis();
      } catch (RuntimeException unreadable) {
        // A negative time makes Kafka Streams drop the record and count it as skipped.
        return -1;
      }
    }
    return -1;
  }
}
