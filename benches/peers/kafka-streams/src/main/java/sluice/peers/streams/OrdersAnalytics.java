// The orders analytics of benches/peers/README.md as a Kafka Streams topology: order counts
// and item demand in 1-minute tumbling windows with 5 s of grace in RocksDB window stores,
// and one inventory event per order line.
package sluice.peers.streams;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.TimeWindows;

public final class OrdersAnalytics {
  static final TimeWindows MINUTE =
      TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(5));

  /**
   * Each partition's window once, when its stream time passes the end and the grace.
   * Suppression rather than `EmitStrategy.onWindowClose()`: that one looks for closed
   * windows at most once a second of wall time, so the last windows of a backlog read in
   * under a second stay unwritten until more records come.
   */
  @SuppressWarnings("unchecked")
  static final Suppressed<Windowed<?>> FINAL =
      Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded());

  private OrdersAnalytics() {}

  /** Counts of one window: all orders, and those that failed. */
  public record Counts(long orders, long failed) {
    Counts plus(Counts other) {
      return new Counts(orders + other.orders, failed + other.failed);
    }
  }

  public static Topology build(String input, int inputPartitions, String prefix) {
    StreamsBuilder builder = new StreamsBuilder();
    KStream<String, Order> placed =
        builder.stream(
                input,
                Consumed.with(Serdes.String(), JsonSerde.of(Order.class))
                    .withTimestampExtractor(new OrderTimestamps()))
            .filter((orderId, order) -> order != null && order.isPlacedEvent());

    // Stage one: windows per input partition (ByInputPartition says why), each written
    // once it closes; stage two sums the partitions' windows in a table, written as it grows.
    placed
        .process(
            () ->
                new ByInputPartition<Integer>(
                    order -> List.of(KeyValue.pair("", order.failed() ? 1 : 0))))
        .repartition(
            Repartitioned.<String, Integer>as("order-outcomes")
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.Integer())
                .withNumberOfPartitions(inputPartitions)
                .withStreamPartitioner(ByInputPartition.toOwnPartition()))
        .groupByKey()
        .windowedBy(MINUTE)
        .aggregate(
            () -> new Counts(0, 0),
            (partition, failedFlag, counts) -> counts.plus(new Counts(1, failedFlag)),
            Materialized.with(Serdes.String(), JsonSerde.of(Counts.class)))
        .suppress(FINAL)
        .toStream()
        .selectKey((window, counts) -> Long.toString(window.window().start()))
        .groupByKey(Grouped.with("order-counts-partials", Serdes.String(), JsonSerde.of(Counts.class)))
        .reduce(Counts::plus, Materialized.with(Serdes.String(), JsonSerde.of(Counts.class)))
        .toStream()
        .mapValues(
            (start, counts) -> {
              ObjectNode value = JsonSerde.MAPPER.createObjectNode();
              value.put("window_start", Long.parseLong(start)).put("orders", counts.orders());
              value.put("failed", counts.failed());
              return value.toString();
            })
        .to(prefix + ".order-counts", Produced.with(Serdes.String(), Serdes.String()));

    placed
        .process(() -> new ByInputPartition<Long>(OrdersAnalytics::reservedQuantities))
        .repartition(
            Repartitioned.<String, Long>as("item-lines")
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.Long())
                .withNumberOfPartitions(inputPartitions)
                .withStreamPartitioner(ByInputPartition.toOwnPartition()))
        .groupByKey()
        .windowedBy(MINUTE)
        .reduce(Long::sum, Materialized.with(Serdes.String(), Serdes.Long()))
        .suppress(FINAL)
        .toStream()
        .selectKey(
            (window, quantity) ->
                window.window().start() + "/" + ByInputPartition.subKeyOf(window.key()))
        .groupByKey(Grouped.with("item-demand-partials", Serdes.String(), Serdes.Long()))
        .reduce(Long::sum, Materialized.with(Serdes.String(), Serdes.Long()))
        .toStream()
        .map(
            (key, quantity) -> {
              int slash = key.indexOf('/');
              ObjectNode value = JsonSerde.MAPPER.createObjectNode();
              value.put("window_start", Long.parseLong(key.substring(0, slash)));
              value.put("item_id", key.substring(slash + 1)).put("quantity", quantity);
              return KeyValue.pair(key, value.toString());
            })
        .to(prefix + ".item-demand", Produced.with(Serdes.String(), Serdes.String()));

    placed
        .flatMap(OrdersAnalytics::inventoryEvents)
        .to(prefix + ".inventory-events", Produced.with(Serdes.String(), Serdes.String()));
    return builder.build();
  }

  /** What a placed order reserves of each item; a failed order reserves nothing. */
  static List<KeyValue<String, Long>> reservedQuantities(Order order) {
    if (order.failed()) {
      return List.of();
    }
    List<KeyValue<String, Long>> lines = new ArrayList<>(order.items().size());
    for (Order.Line line : order.items()) {
      lines.add(KeyValue.pair(line.itemId(), (long) line.quantity()));
    }
    return lines;
  }

  /** One `reserve` (placed order) or `release` (failed order) event per line, by item. */
  static List<KeyValue<String, String>> inventoryEvents(String orderId, Order order) {
    String action = order.failed() ? "release" : "reserve";
    List<KeyValue<String, String>> events = new ArrayList<>(order.items().size());
    for (Order.Line line : order.items()) {
      ObjectNode event = JsonSerde.MAPPER.createObjectNode();
      event.put("event_type", "InventoryEvent").put("order_id", order.orderId());
      event.put("item_id", line.itemId()).put("quantity", line.quantity());
      event.put("action", action).put("timestamp", order.timestamp());
      events.add(KeyValue.pair(line.itemId(), event.toString()));
    }
    return events;
  }
}
