// An `order-events` record as the contract writes it, read with Jackson.
package sluice.peers.streams;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.time.Instant;
import java.util.List;

@JsonIgnoreProperties(ignoreUnknown = true)
public record Order(
    @JsonProperty("event_type") String eventType,
    @JsonProperty("order_id") String orderId,
    @JsonProperty("items") List<Line> items,
    @JsonProperty("status") String status,
    @JsonProperty("timestamp") String timestamp) {

  @JsonIgnoreProperties(ignoreUnknown = true)
  public record Line(
      @JsonProperty("item_id") String itemId, @JsonProperty("quantity") int quantity) {}

  public boolean isPlacedEvent() {
    return "OrderPlaced".equals(eventType) && items != null;
  }

  public boolean failed() {
    return "failed".equals(status);
  }

  /** Event time in epoch milliseconds: RFC 3339, or epoch milliseconds as the contract allows. */
  public long eventTimeMillis() {
    if (timestamp.chars().allMatch(Character::isDigit)) {
      return Long.parseLong(timestamp);
    }
    return Instant.parse(timestamp).toEpochMilli();
  }
}
