// The Kafka Streams settings both peers of the benchmark run with, and their start-up.
package sluice.peers.streams;

import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;

final class StreamsSettings {
  private StreamsSettings() {}

  /** The processing guarantee an argument names, or null. */
  static String guarantee(String name) {
    return switch (name) {
      case "at-least-once" -> StreamsConfig.AT_LEAST_ONCE;
      case "exactly-once" -> StreamsConfig.EXACTLY_ONCE_V2;
      default -> null;
    };
  }

  /** A topic's partition count. */
  static int partitionsOf(String brokers, String topic) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers))) {
      return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
    }
  }

  static Properties properties(String brokers, String applicationId, String guarantee)
      throws Exception {
    Properties props = new Properties();
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
    // Both cores, as Sluice's two workers use them.
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
    // Sluice checkpoints (commits offsets, state and output) every second; Kafka Streams'
    // default is 30 s at least once, which would hold the last results in the cache.
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    props.put(
        StreamsConfig.STATE_DIR_CONFIG,
        Files.createTempDirectory("kafka-streams-peer").toString());
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    // A record that cannot be read is skipped and logged, and the partition moves on.
    props.put(
        StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG,
        LogAndContinueExceptionHandler.class);
    // Sluice's transactions may stay open 60 s; Kafka Streams' default of 10 s aborts
    // them whenever a thread is starved of CPU that long, on a loaded 2-core machine.
    props.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), 60_000);
    // The single-broker test cluster.
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    return props;
  }

  /** Runs `topology` until the process is stopped or a stream thread fails. */
  static void runUntilStopped(String name, Topology topology, Properties props)
      throws InterruptedException {
    KafkaStreams streams = new KafkaStreams(topology, props);
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setUncaughtExceptionHandler(
        error -> {
          System.err.println(name + ": " + error);
          stopped.countDown();
          return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close();
                  // Each run has a state directory of its own: leave nothing behind.
                  streams.cleanUp();
                  stopped.countDown();
                }));
    streams.start();
    stopped.await();
  }
}
