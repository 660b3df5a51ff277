# Sourced by the measurement scripts: `free_port`, and `start_tansu`, which starts a Tansu
# broker with in-memory storage on a free loopback port in a temporary directory, waits
# until it listens, and stops it (and removes the directory) when the script exits.
# After it: PORT is the broker's port, DIR the temporary directory.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_tansu() {
  PORT=$(free_port)
  DIR=$(mktemp -d)
  (cd "$DIR" && exec tansu broker --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine memory://tansu/ \
    > tansu.log 2>&1) &
  BROKER=$!
  trap 'kill $BROKER 2>/dev/null; rm -rf "$DIR"' EXIT
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "tansu did not start listening on $PORT" >&2
  return 1
}
