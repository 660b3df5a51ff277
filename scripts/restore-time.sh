#!/usr/bin/env bash
# Measures how long `shop run` takes to restore its state and serve views after a clean
# stop, with N events behind it. Usage: scripts/restore-time.sh N BROKER_PORT HTTP_PORT
# (needs `tansu` and a release build of `shop`; uses Tansu's in-memory storage).
set -u
N=$1; PORT=$2; HTTP=$3
SHOP=${SHOP:-${CARGO_TARGET_DIR:-target}/release/shop}
DIR=/tmp/restore-$N; rm -rf $DIR; mkdir -p $DIR
(cd $DIR && tansu broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT --storage-engine memory://tansu/ > tansu.log 2>&1 &)
sleep 1
$SHOP produce --brokers 127.0.0.1:$PORT --count $N --log warn > /dev/null 2>&1
$SHOP run --brokers 127.0.0.1:$PORT --state-dir $DIR/state --http 127.0.0.1:$HTTP --log warn > $DIR/run1.log 2>&1 &
PID=$!
until [ "$(curl -s localhost:$HTTP/status | python3 -c "import sys,json; d=json.load(sys.stdin); print(sum(o['offset'] for o in (d.get('checkpoint') or {}).get('offsets',[])))" 2>/dev/null)" = "$N" ]; do sleep 0.5; done
kill -INT $PID; wait $PID
du -sh $DIR/state | cut -f1
START=$(date +%s.%N)
$SHOP run --brokers 127.0.0.1:$PORT --state-dir $DIR/state --http 127.0.0.1:$HTTP --log warn > $DIR/run2.log 2>&1 &
PID=$!
until curl -s localhost:$HTTP/views/orders_per_minute/all | grep -q checkpoint; do sleep 0.02; done
END=$(date +%s.%N)
echo "events $N: serving restored views after $(python3 -c "print(round($END-$START,3))") s"
kill -INT $PID; wait $PID
pkill -f "listener-url tcp://127.0.0.1:$PORT"
