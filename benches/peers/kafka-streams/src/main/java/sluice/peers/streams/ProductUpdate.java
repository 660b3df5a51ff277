// A `product-updates` record as the contract writes it: the latest record of a product.
package sluice.peers.streams;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.time.Instant;

@JsonIgnoreProperties(ignoreUnknown = true)
public record ProductUpdate(
    @JsonProperty("product_id") String productId,
    @JsonProperty("stock") long stock,
    @JsonProperty("threshold") long threshold,
    @JsonProperty("timestamp") String timestamp) {

  /** Event time in epoch milliseconds, as `Order.eventTimeMillis` reads it. */
  public long eventTimeMillis() {
    if (timestamp.chars().allMatch(Character::isDigit)) {
      return Long.parseLong(timestamp);
    }
    return Instant.parse(timestamp).toEpochMilli();
  }
}
