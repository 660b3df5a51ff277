"""The orders analytics (../README.md) as a Bytewax dataflow.

    python -m bytewax.run "orders:flow('BROKERS', 'INPUT_TOPIC', 'OUTPUT_PREFIX', 'GROUP_ID')" -w 2

The Kafka source reads to the end of the input and stops (tail=False); Bytewax then closes
every window, writes it and the run ends by itself.

An event clock is kept per key. The backlog is read a thousand records of one partition at
a time, by two workers, so a key that mixes partitions (one "all" key, or one per item)
would see most events as late. The windows are therefore made per input partition, where
event time is in order, and their partial results are summed per window downstream, which
writes the running total: the last record written for a window is its whole value.
"""

import json
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

WINDOW = timedelta(minutes=1)
WINDOW_MS = 60_000
GRACE = timedelta(seconds=5)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SUMMED = {"orders", "failed", "quantity"}
# The watermark is the latest event time less the grace, as in the contract. EventClock also
# advances it with the system time that passes between items, which in a replay of old
# events only makes the result depend on the machine's speed; a still system clock, with no
# wake-ups, turns that off. Windows close on newer events and at the end of the input.
CLOCK = EventClock(
    ts_getter=lambda order: order["time"],
    wait_for_system_duration=GRACE,
    now_getter=lambda: EPOCH,
    to_system_utc=lambda _: None,
)
WINDOWER = TumblingWindower(length=WINDOW, align_to=EPOCH)


def whole(number) -> int:
    if not isinstance(number, int) or isinstance(number, bool):
        raise TypeError(f"not an integer: {number!r}")
    return number


def text(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def parse(message):
    """An OrderPlaced event as a dict, or None for anything else (skipped)."""
    try:
        event = json.loads(message.value)
        if event["event_type"] != "OrderPlaced":
            return None
        time = datetime.fromisoformat(event["timestamp"])
        if time.tzinfo is None:
            return None
        return {
            "partition": message.partition,
            "time": time,
            "order_id": text(event["order_id"]),
            "failed": ("placed", "failed").index(event["status"]),
            "lines": [(text(line["item_id"]), whole(line["quantity"])) for line in event["items"]],
            "timestamp": event["timestamp"],
        }
    except Exception:
        return None


def inventory_events(order: dict) -> list:
    action = "release" if order["failed"] else "reserve"
    return [
        KafkaSinkMessage(
            key=item_id.encode(),
            value=json.dumps({
                "event_type": "InventoryEvent",
                "order_id": order["order_id"],
                "item_id": item_id,
                "quantity": quantity,
                "action": action,
                "timestamp": order["timestamp"],
            }).encode(),
        )
        for item_id, quantity in order["lines"]
    ]


def add_partial(total, partial):
    """Adds one partition's result for a window (the key) to the window's running total."""
    if total is not None:
        partial = {**total, **{field: total[field] + partial[field]
                               for field in SUMMED.intersection(partial)}}
    return partial, partial


# A window's id counts windows from align_to, the epoch, so id * length is its start.
def count_partial(key_window):
    _partition, (window_id, (orders, failed)) = key_window
    start = window_id * WINDOW_MS
    return str(start), {"window_start": start, "orders": orders, "failed": failed}


def demand_partial(key_window):
    partition_item, (window_id, quantity) = key_window
    item_id = partition_item.split("/", 1)[1]
    start = window_id * WINDOW_MS
    return f"{start}/{item_id}", {"window_start": start, "item_id": item_id, "quantity": quantity}


def to_message(key_total) -> KafkaSinkMessage:
    key, total = key_total
    return KafkaSinkMessage(key=key.encode(), value=json.dumps(total).encode())


def create_missing(servers: list, input_topic: str, names: list) -> None:
    """Creates the output topics that are missing, as many partitions as the input: Bytewax's
    sink expects them to exist."""
    admin = AdminClient({"bootstrap.servers": ",".join(servers)})
    topics = admin.list_topics(timeout=30).topics
    partitions = len(topics[input_topic].partitions)
    missing = [NewTopic(name, partitions) for name in names if name not in topics]
    if not missing:
        return
    for future in admin.create_topics(missing).values():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def flow(brokers: str, input_topic: str, prefix: str, group: str) -> Dataflow:
    servers = brokers.split(",")
    create_missing(servers, input_topic, [f"{prefix}.{name}" for name in
                                          ("order-counts", "item-demand", "inventory-events")])
    dataflow = Dataflow("orders")
    # Bytewax assigns the partitions itself and keeps no offsets in Kafka, so it has no use
    # for the group: every run reads from the beginning.
    source = KafkaSource(servers, [input_topic], tail=False, starting_offset=OFFSET_BEGINNING)
    orders = op.filter_map("parse", op.input("orders", dataflow, source), parse)

    inventory = op.flat_map("inventory", orders, inventory_events)
    op.output("inventory-out", inventory, KafkaSink(servers, f"{prefix}.inventory-events"))

    # ordered=False: sums do not depend on order, so items need not wait for the watermark.
    counts = fold_window(
        "counts", op.key_on("by-partition", orders, lambda order: str(order["partition"])),
        CLOCK, WINDOWER, builder=lambda: (0, 0),
        folder=lambda acc, order: (acc[0] + 1, acc[1] + order["failed"]),
        merger=lambda a, b: (a[0] + b[0], a[1] + b[1]), ordered=False,
    )
    count_partials = op.map("count-partial", counts.down, count_partial)
    count_totals = op.stateful_map("count-total", count_partials, add_partial)
    op.output("counts-out", op.map("count-message", count_totals, to_message),
              KafkaSink(servers, f"{prefix}.order-counts"))

    placed = op.filter("placed", orders, lambda order: not order["failed"])
    lines = op.flat_map("lines", placed, lambda order: [
        {"partition": order["partition"], "time": order["time"], "item_id": item, "quantity": q}
        for item, q in order["lines"]
    ])
    demand = fold_window(
        "demand", op.key_on("by-partition-item", lines,
                            lambda line: f"{line['partition']}/{line['item_id']}"),
        CLOCK, WINDOWER, builder=lambda: 0,
        folder=lambda acc, line: acc + line["quantity"], merger=lambda a, b: a + b,
        ordered=False,
    )
    demand_partials = op.map("demand-partial", demand.down, demand_partial)
    demand_totals = op.stateful_map("demand-total", demand_partials, add_partial)
    op.output("demand-out", op.map("demand-message", demand_totals, to_message),
              KafkaSink(servers, f"{prefix}.item-demand"))
    return dataflow
