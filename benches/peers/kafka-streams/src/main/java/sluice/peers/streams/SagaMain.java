// Starts the inventory saga peer of the benchmark and runs it until stopped.
package sluice.peers.streams;

import org.apache.kafka.streams.Topology;

public final class SagaMain {
  private static final String USAGE =
      "usage: kafka-streams-saga BROKERS ORDERS_TOPIC PRODUCTS_TOPIC OUTPUT_PREFIX APPLICATION_ID"
          + " at-least-once|exactly-once";

  private SagaMain() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println(USAGE);
      System.exit(2);
    }
    String guarantee = StreamsSettings.guarantee(args[5]);
    if (guarantee == null) {
      System.err.println("unknown guarantee '" + args[5] + "'; " + USAGE);
      System.exit(2);
    }
    Topology topology =
        InventorySaga.build(
            args[1],
            StreamsSettings.partitionsOf(args[0], args[1]),
            args[2],
            StreamsSettings.partitionsOf(args[0], args[2]),
            args[3]);
    StreamsSettings.runUntilStopped(
        "kafka-streams-saga", topology, StreamsSettings.properties(args[0], args[4], guarantee));
  }
}
