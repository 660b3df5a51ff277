// A record of `order-events` as the job needs it, and the Kafka value decoder that makes one.
package sluice.peers.flink;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.time.Instant;
import org.apache.flink.api.common.serialization.AbstractDeserializationSchema;

// Public fields and a no-argument constructor make it a Flink POJO (no Kryo) and let Jackson
// bind it directly.
@JsonIgnoreProperties(ignoreUnknown = true)
public class Order {
    public static final String PLACED = "OrderPlaced";

    @JsonProperty("event_type") public String eventType;
    @JsonProperty("order_id") public String orderId;
    public String status;
    public Line[] items;
    // Kept as read: inventory events repeat it verbatim.
    public String timestamp;
    // Event time; set by the decoder, not found in the JSON.
    public long timestampMs;

    public Order() {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    public static class Line {
        @JsonProperty("item_id") public String itemId;
        public int quantity;

        public Line() {}
    }

    // A record that could not be parsed still leaves the source, so that the job can count
    // it in an accumulator, which only an operator (not a decoder) can reach. Its event time
    // is the least there is, so it never moves the watermark.
    static Order unparseable() {
        Order order = new Order();
        order.timestampMs = Long.MIN_VALUE;
        return order;
    }

    boolean isUnparseable() {
        return eventType == null;
    }

    boolean isFailed() {
        return "failed".equals(status);
    }

    /** Decodes a Kafka value; what the contract does not allow becomes {@link #unparseable}. */
    public static class Decoder extends AbstractDeserializationSchema<Order> {
        // ObjectReader is immutable and thread-safe, so the source's subtasks share one.
        private static final ObjectReader READER = JsonMapper.builder().build().readerFor(Order.class);

        @Override
        public Order deserialize(byte[] value) {
            try {
                Order order = READER.readValue(value);
                order.timestampMs = Instant.parse(order.timestamp).toEpochMilli();
                return order.isValid() ? order : unparseable();
            } catch (Exception e) {
                return unparseable();
            }
        }
    }

    private boolean isValid() {
        if ("OrderCancelled".equals(eventType)) {
            return orderId != null;
        }
        if (!PLACED.equals(eventType) || orderId == null || items == null
                || !("placed".equals(status) || "failed".equals(status))) {
            return false;
        }
        for (Line line : items) {
            if (line == null || line.itemId == null || line.quantity < 0) {
                return false;
            }
        }
        return true;
    }
}
