// One record of the saga's input, an order or a product update, with the input partition it
// was read from: the saga orders its input by event time per input partition, as a
// watermark does, and the single partition it is repartitioned into loses where each
// record came from.
package sluice.peers.streams;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

@JsonIgnoreProperties(ignoreUnknown = true)
public record ShopInput(
    @JsonProperty("partition") int partition,
    @JsonProperty("order") Order order,
    @JsonProperty("product") ProductUpdate product) {

  /** The stream a record belongs to: `o` plus the partition, or `p` plus the partition. */
  String stream() {
    return (order != null ? "o" : "p") + partition;
  }

  /**
   * Orders go before product updates of the same event time, as Sluice applies its
   * sources in the order they are declared.
   */
  int rank() {
    return order != null ? 0 : 1;
  }
}
