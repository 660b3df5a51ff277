// The inventory saga's reservation logic as a Kafka Streams topology: orders and product
// updates, tagged with their input partition, repartitioned into one partition (an order's
// decision reads the levels of all its items, so one task must hold them all), and applied
// in event-time order by one processor with RocksDB key-value stores.
package sluice.peers.streams;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.state.Stores;

public final class InventorySaga {
  private InventorySaga() {}

  public static Topology build(
      String ordersTopic,
      int orderPartitions,
      String productsTopic,
      int productPartitions,
      String prefix) {
    StreamsBuilder builder = new StreamsBuilder();
    // Cached, as a hot store should be: a commit writes each key's last value to RocksDB and
    // the changelog once, and a record buffered and applied within one commit not at all.
    builder.addStateStore(
        Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(SagaProcessor.STATE), Serdes.String(), Serdes.String())
            .withCachingEnabled());
    builder.addStateStore(
        Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(SagaProcessor.PENDING),
                Serdes.Bytes(),
                JsonSerde.of(ShopInput.class))
            .withCachingEnabled());

    KStream<String, ShopInput> orders =
        builder.stream(
                ordersTopic,
                Consumed.with(Serdes.String(), JsonSerde.of(Order.class))
                    .withTimestampExtractor(new ShopTimestamps()))
            .filter((orderId, order) -> order != null && order.orderId() != null)
            .processValues(() -> new TagPartition<Order>(true));
    KStream<String, ShopInput> products =
        builder.stream(
                productsTopic,
                Consumed.with(Serdes.String(), JsonSerde.of(ProductUpdate.class))
                    .withTimestampExtractor(new ShopTimestamps()))
            .filter((productId, product) -> product != null && product.productId() != null)
            .processValues(() -> new TagPartition<ProductUpdate>(false));

    orders
        .merge(products)
        .repartition(
            Repartitioned.<String, ShopInput>as("saga-input")
                .withKeySerde(Serdes.String())
                .withValueSerde(JsonSerde.of(ShopInput.class))
                .withNumberOfPartitions(1))
        .process(
            () -> new SagaProcessor(orderPartitions, productPartitions),
            SagaProcessor.STATE,
            SagaProcessor.PENDING)
        .to(prefix + ".inventory-events", Produced.with(Serdes.String(), Serdes.String()));
    return builder.build();
  }

  /** Wraps a record with the input partition it was read from. */
  private static final class TagPartition<V> implements FixedKeyProcessor<String, V, ShopInput> {
    private final boolean isOrder;
    private FixedKeyProcessorContext<String, ShopInput> context;

    TagPartition(boolean isOrder) {
      this.isOrder = isOrder;
    }

    @Override
    public void init(FixedKeyProcessorContext<String, ShopInput> context) {
      this.context = context;
    }

    @Override
    public void process(FixedKeyRecord<String, V> record) {
      int partition = context.recordMetadata().map(metadata -> metadata.partition()).orElse(0);
      ShopInput input =
          isOrder
              ? new ShopInput(partition, (Order) record.value(), null)
              : new ShopInput(partition, null, (ProductUpdate) record.value());
      context.forward(record.withValue(input));
    }
  }
}
