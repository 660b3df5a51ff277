// What the job writes: the README's keys and JSON values, and the functions that make them.
package sluice.peers.flink;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

public final class Outputs {
    private Outputs() {}

    private static final JsonNodeFactory JSON = JsonMapper.builder().build().getNodeFactory();

    /** One Kafka record, already encoded: every sink takes this one type. */
    public static class Keyed {
        public String key;
        public String value;

        public Keyed() {}

        Keyed(String key, ObjectNode value) {
            this.key = key;
            this.value = value.toString();
        }
    }

    // Named classes, not lambdas: the Kafka sink reads their type parameter for its lineage.
    static class KeyBytes implements SerializationSchema<Keyed> {
        @Override
        public byte[] serialize(Keyed record) {
            return record.key.getBytes(StandardCharsets.UTF_8);
        }
    }

    static class ValueBytes implements SerializationSchema<Keyed> {
        @Override
        public byte[] serialize(Keyed record) {
            return record.value.getBytes(StandardCharsets.UTF_8);
        }
    }

    /** Orders and failed orders of a window; the accumulator of {@link CountOrders}. */
    public static class OrderCounts {
        public long orders;
        public long failed;

        public OrderCounts() {}
    }

    /** Folds each order's outcome (failed or not) into its window's counts as it arrives. */
    static class CountOrders implements AggregateFunction<Boolean, OrderCounts, OrderCounts> {
        @Override
        public OrderCounts createAccumulator() {
            return new OrderCounts();
        }

        @Override
        public OrderCounts add(Boolean failed, OrderCounts counts) {
            counts.orders++;
            if (failed) {
                counts.failed++;
            }
            return counts;
        }

        @Override
        public OrderCounts getResult(OrderCounts counts) {
            return counts;
        }

        @Override
        public OrderCounts merge(OrderCounts a, OrderCounts b) {
            a.orders += b.orders;
            a.failed += b.failed;
            return a;
        }
    }

    /** Adds the window's start, which the aggregate alone does not know. */
    static class OrderCountsWindow extends ProcessWindowFunction<OrderCounts, Keyed, String, TimeWindow> {
        @Override
        public void process(String all, Context context, Iterable<OrderCounts> result, Collector<Keyed> out) {
            OrderCounts counts = result.iterator().next();
            long start = context.window().getStart();
            out.collect(new Keyed(Long.toString(start), JSON.objectNode()
                    .put("window_start", start)
                    .put("orders", counts.orders)
                    .put("failed", counts.failed)));
        }
    }

    /** Sums the quantities of one item's lines as they arrive. */
    static class SumQuantity implements AggregateFunction<Order.Line, Long, Long> {
        @Override
        public Long createAccumulator() {
            return 0L;
        }

        @Override
        public Long add(Order.Line line, Long sum) {
            return sum + line.quantity;
        }

        @Override
        public Long getResult(Long sum) {
            return sum;
        }

        @Override
        public Long merge(Long a, Long b) {
            return a + b;
        }
    }

    static class ItemDemandWindow extends ProcessWindowFunction<Long, Keyed, String, TimeWindow> {
        @Override
        public void process(String item, Context context, Iterable<Long> result, Collector<Keyed> out) {
            long start = context.window().getStart();
            out.collect(new Keyed(start + "/" + item, JSON.objectNode()
                    .put("window_start", start)
                    .put("item_id", item)
                    .put("quantity", result.iterator().next())));
        }
    }

    /** One inventory event per line of an OrderPlaced: reserve if placed, release if failed. */
    static class InventoryEvents implements FlatMapFunction<Order, Keyed> {
        @Override
        public void flatMap(Order order, Collector<Keyed> out) {
            String action = order.isFailed() ? "release" : "reserve";
            for (Order.Line line : order.items) {
                out.collect(new Keyed(line.itemId, JSON.objectNode()
                        .put("event_type", "InventoryEvent")
                        .put("order_id", order.orderId)
                        .put("item_id", line.itemId)
                        .put("quantity", line.quantity)
                        .put("action", action)
                        .put("timestamp", order.timestamp)));
            }
        }
    }
}
