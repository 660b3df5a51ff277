// The orders analytics (benches/peers/README.md) as an Apache Flink DataStream job: a bounded
// Kafka source, event-time windows, and Kafka sinks, run in a local MiniCluster.
package sluice.peers.flink;

import java.time.Duration;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFilterFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public final class OrdersJob {
    private static final Logger LOG = LoggerFactory.getLogger(OrdersJob.class);
    private static final Duration GRACE = Duration.ofSeconds(5);
    private static final Duration MINUTE = Duration.ofMinutes(1);
    private static final String UNPARSEABLE = "unparseable-records";

    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: OrdersJob BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID");
            System.exit(2);
        }
        try {
            run(args);
        } catch (Throwable e) {
            LOG.error("the orders analytics failed", e);
            // Threads the local cluster leaves behind would otherwise keep a failed run alive.
            System.exit(1);
        }
    }

    private static void run(String[] args) throws Exception {
        String brokers = args[0];
        String prefix = args[2];

        Configuration config = new Configuration();
        // Every type below has a Flink serializer; this makes a silent fall-back to Kryo an error.
        config.set(PipelineOptions.GENERIC_TYPES, false);
        // No function keeps or changes a record it was handed, so chained operators may share them
        // rather than copy each one.
        config.set(PipelineOptions.OBJECT_REUSE, true);
        // The local cluster's REST and blob servers serve this process alone: no other host.
        config.set(JobManagerOptions.BIND_HOST, "127.0.0.1");
        config.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(config);
        env.setParallelism(2);

        KafkaSource<Order> source = KafkaSource.<Order>builder()
                .setBootstrapServers(brokers)
                .setTopics(args[1])
                .setGroupId(args[3])
                .setStartingOffsets(OffsetsInitializer.earliest())
                // Ends the job once it has read what the topic held when it started.
                .setBounded(OffsetsInitializer.latest())
                .setValueOnlyDeserializer(new Order.Decoder())
                .build();
        // Given to the source rather than applied after it, so that each Kafka partition keeps a
        // watermark of its own and the slowest one holds the windows back.
        WatermarkStrategy<Order> watermarks = WatermarkStrategy.<Order>forBoundedOutOfOrderness(GRACE)
                .withTimestampAssigner((order, kafkaTimestamp) -> order.timestampMs);

        DataStream<Order> orderPlaced = env.fromSource(source, watermarks, "order-events")
                .filter(new OrderPlacedOnly())
                .name("OrderPlaced");

        // Only each order's outcome crosses to the one subtask that holds the key "all".
        orderPlaced.map(Order::isFailed).returns(Types.BOOLEAN).name("outcome")
                .keyBy(failed -> "all", Types.STRING)
                .window(TumblingEventTimeWindows.of(MINUTE))
                .aggregate(new Outputs.CountOrders(), new Outputs.OrderCountsWindow())
                .name("order-counts")
                .sinkTo(sink(brokers, prefix + ".order-counts"))
                .name("order-counts sink");

        orderPlaced.filter(order -> !order.isFailed()).name("placed")
                .flatMap((Order order, Collector<Order.Line> out) -> {
                    for (Order.Line line : order.items) {
                        out.collect(line);
                    }
                })
                .returns(Order.Line.class).name("lines")
                .keyBy(line -> line.itemId, Types.STRING)
                .window(TumblingEventTimeWindows.of(MINUTE))
                .aggregate(new Outputs.SumQuantity(), new Outputs.ItemDemandWindow())
                .name("item-demand")
                .sinkTo(sink(brokers, prefix + ".item-demand"))
                .name("item-demand sink");

        orderPlaced.flatMap(new Outputs.InventoryEvents()).name("inventory-events")
                .sinkTo(sink(brokers, prefix + ".inventory-events"))
                .name("inventory-events sink");

        JobExecutionResult result = env.execute("orders analytics");
        Long unparseable = result.getAccumulatorResult(UNPARSEABLE);
        if (unparseable != null && unparseable > 0) {
            LOG.warn("skipped {} records of {} that could not be parsed", unparseable, args[1]);
        }
    }

    /** Keeps the OrderPlaced events, the only ones any output counts, and counts the unparseable. */
    static class OrderPlacedOnly extends RichFilterFunction<Order> {
        private final LongCounter unparseable = new LongCounter();

        @Override
        public void open(OpenContext context) {
            getRuntimeContext().addAccumulator(UNPARSEABLE, unparseable);
        }

        @Override
        public boolean filter(Order order) {
            if (order.isUnparseable()) {
                unparseable.add(1);
                return false;
            }
            return Order.PLACED.equals(order.eventType);
        }
    }

    /** At least once: the sink flushes its producer at the end of the bounded input. */
    private static KafkaSink<Outputs.Keyed> sink(String brokers, String topic) {
        return KafkaSink.<Outputs.Keyed>builder()
                .setBootstrapServers(brokers)
                .setRecordSerializer(KafkaRecordSerializationSchema.<Outputs.Keyed>builder()
                        .setTopic(topic)
                        .setKeySerializationSchema(new Outputs.KeyBytes())
                        .setValueSerializationSchema(new Outputs.ValueBytes())
                        .build())
                .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                .build();
    }
}
