// The inventory saga of the shop contract (topologies/src/inventory.rs) as a Kafka Streams
// processor: records wait in a key-value store until every input partition has passed
// their event time, then are applied one at a time to the stock levels and orders kept in
// another.
package sluice.peers.streams;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

final class SagaProcessor implements Processor<String, ShopInput, String, String> {
  /** Items (`item/ID`: stock, threshold, held), orders (`order/ID`) and watermarks. */
  static final String STATE = "saga-state";
  /** Records read but not yet applied, by event time, source and offset. */
  static final String PENDING = "saga-pending";

  private enum StockState {
    NORMAL,
    WARNING,
    DEPLETED;

    static StockState of(long level, long threshold) {
      if (level <= 0) {
        return DEPLETED;
      }
      return level < threshold ? WARNING : NORMAL;
    }
  }

  private static final class Item {
    long stock;
    long threshold;
    long held;

    long level() {
      return stock - held;
    }

    static Item parse(String stored) {
      String[] parts = stored.split(",");
      Item item = new Item();
      item.stock = Long.parseLong(parts[0]);
      item.threshold = Long.parseLong(parts[1]);
      item.held = Long.parseLong(parts[2]);
      return item;
    }

    String encode() {
      return stock + "," + threshold + "," + held;
    }
  }

  private final List<String> streams = new ArrayList<>();
  private final Map<String, Long> highestSeen = new HashMap<>();
  /** The pending store's records, kept in memory too so that releasing them reads no disk. */
  private final TreeMap<Bytes, ShopInput> buffered = new TreeMap<>();
  private ProcessorContext<String, String> context;
  private KeyValueStore<String, String> state;
  private KeyValueStore<Bytes, ShopInput> pending;

  SagaProcessor(int orderPartitions, int productPartitions) {
    for (int partition = 0; partition < orderPartitions; partition++) {
      streams.add("o" + partition);
    }
    for (int partition = 0; partition < productPartitions; partition++) {
      streams.add("p" + partition);
    }
  }

  @Override
  public void init(ProcessorContext<String, String> context) {
    this.context = context;
    this.state = context.getStateStore(STATE);
    this.pending = context.getStateStore(PENDING);
    for (String stream : streams) {
      String mark = state.get("mark/" + stream);
      if (mark != null) {
        highestSeen.put(stream, Long.parseLong(mark));
      }
    }
    try (KeyValueIterator<Bytes, ShopInput> all = pending.all()) {
      while (all.hasNext()) {
        KeyValue<Bytes, ShopInput> entry = all.next();
        buffered.put(entry.key, entry.value);
      }
    }
  }

  @Override
  public void process(Record<String, ShopInput> record) {
    ShopInput input = record.value();
    long offset = context.recordMetadata().map(metadata -> metadata.offset()).orElse(0L);
    Bytes key = sortKey(record.timestamp(), input.rank(), offset);
    buffered.put(key, input);
    pending.put(key, input);
    String stream = input.stream();
    if (record.timestamp() > highestSeen.getOrDefault(stream, Long.MIN_VALUE)) {
      highestSeen.put(stream, record.timestamp());
      state.put("mark/" + stream, Long.toString(record.timestamp()));
    }
    // Each input partition is in event-time order, so a record older than what every
    // partition has shown is final: nothing earlier can still come. Records of that very
    // time wait, as one more may come from a partition that just reached it.
    long watermark = Long.MAX_VALUE;
    for (String each : streams) {
      watermark = Math.min(watermark, highestSeen.getOrDefault(each, Long.MIN_VALUE));
    }
    while (!buffered.isEmpty()) {
      Map.Entry<Bytes, ShopInput> first = buffered.firstEntry();
      long eventTime = eventTimeOf(first.getKey());
      if (eventTime >= watermark) {
        break;
      }
      buffered.pollFirstEntry();
      pending.delete(first.getKey());
      apply(first.getValue(), eventTime);
    }
  }

  private static Bytes sortKey(long eventTime, int rank, long offset) {
    // The sign bit flipped, so that unsigned byte order is the order of times.
    return Bytes.wrap(
        ByteBuffer.allocate(17)
            .putLong(eventTime ^ Long.MIN_VALUE)
            .put((byte) rank)
            .putLong(offset)
            .array());
  }

  private static long eventTimeOf(Bytes key) {
    return ByteBuffer.wrap(key.get()).getLong() ^ Long.MIN_VALUE;
  }

  private void apply(ShopInput input, long eventTime) {
    if (input.product() != null) {
      ProductUpdate product = input.product();
      changeItem(
          product.productId(),
          eventTime,
          product.timestamp(),
          item -> {
            item.stock = product.stock();
            item.threshold = product.threshold();
          },
          null);
      return;
    }
    Order order = input.order();
    if ("OrderPlaced".equals(order.eventType()) && order.items() != null) {
      place(order, eventTime);
    } else if ("OrderCancelled".equals(order.eventType())) {
      cancel(order, eventTime);
    }
  }

  private void place(Order order, long eventTime) {
    String orderKey = "order/" + order.orderId();
    if (state.get(orderKey) != null) {
      // A duplicate, or cancelled before it was placed: the decision stands.
      return;
    }
    if (order.failed()) {
      state.put(orderKey, "failed");
      return;
    }
    Map<String, Integer> asked = new LinkedHashMap<>();
    for (Order.Line line : order.items()) {
      asked.merge(line.itemId(), line.quantity(), Integer::sum);
    }
    for (Map.Entry<String, Integer> ask : asked.entrySet()) {
      String stored = state.get("item/" + ask.getKey());
      Long available = stored == null ? null : Item.parse(stored).level();
      if (available == null || available < ask.getValue()) {
        ObjectNode failed = event("ReservationFailed", ask.getKey(), order.timestamp());
        failed.put("order_id", order.orderId()).put("requested", ask.getValue());
        failed.put("available", available == null ? 0 : available);
        failed.put("reason", available == null ? "unknown_item" : "insufficient_stock");
        emit(ask.getKey(), failed, eventTime);
        state.put(orderKey, "failed");
        return;
      }
    }
    StringBuilder held = new StringBuilder("confirmed|");
    for (Order.Line line : order.items()) {
      changeItem(
          line.itemId(),
          eventTime,
          order.timestamp(),
          item -> item.held += line.quantity(),
          item -> {
            ObjectNode reserved = event("StockReserved", line.itemId(), order.timestamp());
            reserved.put("order_id", order.orderId()).put("quantity", line.quantity());
            reserved.put("level", item.level());
            return reserved;
          });
      held.append(line.itemId()).append(':').append(line.quantity()).append(',');
    }
    state.put(orderKey, held.toString());
  }

  private void cancel(Order order, long eventTime) {
    String orderKey = "order/" + order.orderId();
    String stored = state.get(orderKey);
    if (stored != null && !stored.startsWith("confirmed|")) {
      return;
    }
    if (stored != null) {
      for (String line : stored.substring("confirmed|".length()).split(",")) {
        if (line.isEmpty()) {
          continue;
        }
        int colon = line.lastIndexOf(':');
        String itemId = line.substring(0, colon);
        int quantity = Integer.parseInt(line.substring(colon + 1));
        ObjectNode release = event("InventoryEvent", itemId, order.timestamp());
        release.put("order_id", order.orderId()).put("quantity", quantity);
        release.put("action", "release");
        emit(itemId, release, eventTime);
        changeItem(itemId, eventTime, order.timestamp(), item -> item.held -= quantity, null);
      }
    }
    state.put(orderKey, "cancelled");
  }

  /**
   * Changes an item; emits `announce`'s event, if any, and then the change of state it led
   * to. An item new to the catalog starts from normal.
   */
  private void changeItem(
      String itemId,
      long eventTime,
      String timestamp,
      Consumer<Item> change,
      Function<Item, ObjectNode> announce) {
    String itemKey = "item/" + itemId;
    String stored = state.get(itemKey);
    Item item = stored == null ? new Item() : Item.parse(stored);
    StockState before =
        stored == null ? StockState.NORMAL : StockState.of(item.level(), item.threshold);
    change.accept(item);
    if (announce != null) {
      emit(itemId, announce.apply(item), eventTime);
    }
    StockState after = StockState.of(item.level(), item.threshold);
    if (after != before) {
      String type =
          switch (after) {
            case NORMAL -> "StockLevelNormalized";
            case WARNING -> "StockLevelWarning";
            case DEPLETED -> "StockDepleted";
          };
      ObjectNode transition = event(type, itemId, timestamp);
      transition.put("level", item.level()).put("threshold", item.threshold);
      emit(itemId, transition, eventTime);
    }
    state.put(itemKey, item.encode());
  }

  private static ObjectNode event(String type, String itemId, String timestamp) {
    ObjectNode event = JsonSerde.MAPPER.createObjectNode();
    event.put("event_type", type).put("item_id", itemId).put("timestamp", timestamp);
    return event;
  }

  private void emit(String itemId, ObjectNode event, long eventTime) {
    context.forward(new Record<>(itemId, event.toString(), eventTime));
  }
}
