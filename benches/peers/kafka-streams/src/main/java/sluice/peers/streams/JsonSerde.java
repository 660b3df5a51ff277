// A Jackson serde for the peer's record types: orders are parsed once, when read.
package sluice.peers.streams;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

public final class JsonSerde {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private JsonSerde() {}

  public static <T> Serde<T> of(Class<T> type) {
    Serializer<T> serializer =
        (topic, value) -> {
          try {
            return value == null ? null : MAPPER.writeValueAsBytes(value);
          } catch (IOException error) {
            throw new SerializationException(error);
          }
        };
    // A record that is not JSON of this shape throws, and the deserialization handler
    // skips it.
    Deserializer<T> deserializer =
        (topic, bytes) -> {
          try {
            return bytes == null ? null : MAPPER.readValue(bytes, type);
          } catch (IOException error) {
            throw new SerializationException(error);
          }
        };
    return Serdes.serdeFrom(serializer, deserializer);
  }
}
