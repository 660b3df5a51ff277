"""The orders analytics (../README.md) as a Quix Streams application.

    python orders.py BROKERS INPUT_TOPIC OUTPUT_PREFIX GROUP_ID [STATE_DIR]

One process: Quix Streams scales by running more processes in one consumer group, not by
threads, so on one machine the idiom is one process. It runs until it is stopped.

Quix closes a window when the latest event time seen for its key passes its end plus the
grace. It keeps no watermark across partitions, and a backlog is read a partition batch at a
time, so a window keyed "all" fed through `group_by` would see three partitions' events as
minutes late and drop them. The windows are therefore made per input partition, where event
time is in order, and their partial results are summed per window in a second dataframe,
which writes the running total: the last record written for a window is its whole value.
"""

import sys
import warnings
from datetime import datetime, timedelta, timezone

# quixstreams imports the Schema Registry client, whose authlib prints a deprecation notice
# on every start; this job uses neither, so the notice is kept off stderr.
with warnings.catch_warnings(record=True):
    from quixstreams import Application, State, message_context
    from quixstreams.dataframe.windows import Count, Sum
    from quixstreams.models.serializers import IgnoreMessage, JSONDeserializer

WINDOW_MS = 60_000
GRACE_MS = 5_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MILLISECOND = timedelta(milliseconds=1)
SUMMED = {"orders", "failed", "quantity"}


def event_time_ms(rfc3339: str) -> int:
    moment = datetime.fromisoformat(rfc3339)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {rfc3339}")
    return (moment - EPOCH) // MILLISECOND


def whole(number) -> int:
    if not isinstance(number, int) or isinstance(number, bool):
        raise TypeError(f"not an integer: {number!r}")
    return number


def text(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


class OrderEvents(JSONDeserializer):
    """The contract's JSON order events; any record that is not one is skipped."""

    def __call__(self, value, ctx):
        try:
            event = super().__call__(value, ctx)
            event["time_ms"] = event_time_ms(event["timestamp"])
            if event["event_type"] == "OrderPlaced":
                event["failed"] = ("placed", "failed").index(event["status"])
                event["lines"] = [(text(line["item_id"]), whole(line["quantity"]))
                                  for line in event["items"]]
                text(event["order_id"])
        except Exception:
            raise IgnoreMessage() from None
        return event


def inventory_events(order: dict) -> list:
    action = "release" if order["failed"] else "reserve"
    return [
        {
            "event_type": "InventoryEvent",
            "order_id": order["order_id"],
            "item_id": item_id,
            "quantity": quantity,
            "action": action,
            "timestamp": order["timestamp"],
        }
        for item_id, quantity in order["lines"]
    ]


def add_partial(partial: dict, state: State) -> dict:
    """Adds one input partition's result for a window (its key) to the window's total."""
    total = state.get("total")
    if total is None:
        total = partial
    else:
        for field in SUMMED.intersection(partial):
            total[field] += partial[field]
    state.set("total", total)
    return total


def main() -> None:
    brokers, input_topic, prefix, group = sys.argv[1:5]
    state_dir = sys.argv[5] if len(sys.argv) > 5 else "state"
    app = Application(
        broker_address=brokers,
        consumer_group=group,
        auto_offset_reset="earliest",
        loglevel="WARNING",
        state_dir=state_dir,
    )
    orders_in = app.topic(
        input_topic,
        key_deserializer="str",
        value_deserializer=OrderEvents(),
        # A tombstone has no event time; it is dropped below.
        timestamp_extractor=lambda value, _headers, ts, _type: value["time_ms"] if value else ts,
    )
    out = {
        name: app.topic(f"{prefix}.{name}", key_serializer="str", value_serializer="json")
        for name in ("order-counts", "item-demand", "inventory-events")
    }
    # Named after the group, as Quix names its own internal topics, so that a run never
    # reads the partials of an earlier one.
    partials = app.topic(f"{group}--window-partials", key_serializer="str", key_deserializer="str")

    sdf = app.dataframe(orders_in)
    orders = sdf.filter(lambda event: bool(event) and event["event_type"] == "OrderPlaced")

    orders.apply(inventory_events, expand=True).to_topic(
        out["inventory-events"], key=lambda event: event["item_id"]
    )

    (
        orders.apply(lambda order: {"failed": order["failed"]})
        .group_by(lambda _: str(message_context().partition), name="partition")
        .tumbling_window(duration_ms=WINDOW_MS, grace_ms=GRACE_MS)
        .agg(orders=Count(), failed=Sum("failed"))
        .final()
        .apply(lambda window: {"window_start": window["start"], "orders": window["orders"],
                               "failed": window["failed"]})
        .to_topic(partials, key=lambda partial: str(partial["window_start"]))
    )
    (
        orders.filter(lambda order: not order["failed"])
        .apply(lambda order: [{"item_id": i, "quantity": q} for i, q in order["lines"]],
               expand=True)
        .group_by(
            lambda line: f"{message_context().partition}/{line['item_id']}",
            name="partition-item",
        )
        .tumbling_window(duration_ms=WINDOW_MS, grace_ms=GRACE_MS)
        .agg(quantity=Sum("quantity"))
        .final()
        .apply(
            lambda window, key, _ts, _headers: {
                "window_start": window["start"],
                "item_id": key.split("/", 1)[1],
                "quantity": window["quantity"],
            },
            metadata=True,
        )
        .to_topic(partials, key=lambda p: f"{p['window_start']}/{p['item_id']}")
    )

    app.dataframe(partials).apply(add_partial, stateful=True).to_topic(
        lambda total, *_: out["item-demand" if "item_id" in total else "order-counts"]
    )

    app.run()


if __name__ == "__main__":
    main()
