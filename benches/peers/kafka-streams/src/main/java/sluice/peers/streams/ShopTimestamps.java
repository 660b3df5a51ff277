// Event time from an order's or a product update's own `timestamp`, read from the record
// already deserialized.
package sluice.peers.streams;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

public final class ShopTimestamps implements TimestampExtractor {
  @Override
  public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
    try {
      if (record.value() instanceof Order order && order.timestamp() != null) {
        return order.eventTimeMillis();
      }
      if (record.value() instanceof ProductUpdate product && product.timestamp() != null) {
        return product.eventTimeMillis();
      }
    } catch (RuntimeException unreadable) {
      // Below: a negative time makes Kafka Streams drop the record and count it as skipped.
    }
    return -1;
  }
}
