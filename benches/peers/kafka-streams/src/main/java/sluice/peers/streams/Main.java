// Starts the orders analytics peer of the benchmark and runs it until stopped.
package sluice.peers.streams;

import org.apache.kafka.streams.Topology;

public final class Main {
  private static final String USAGE =
      "usage: kafka-streams-peer BROKERS INPUT_TOPIC OUTPUT_PREFIX APPLICATION_ID"
          + " at-least-once|exactly-once";

  private Main() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println(USAGE);
      System.exit(2);
    }
    String guarantee = StreamsSettings.guarantee(args[4]);
    if (guarantee == null) {
      System.err.println("unknown guarantee '" + args[4] + "'; " + USAGE);
      System.exit(2);
    }
    // One windowed task per input partition.
    Topology topology =
        OrdersAnalytics.build(args[1], StreamsSettings.partitionsOf(args[0], args[1]), args[2]);
    StreamsSettings.runUntilStopped(
        "kafka-streams-peer", topology, StreamsSettings.properties(args[0], args[3], guarantee));
  }
}
