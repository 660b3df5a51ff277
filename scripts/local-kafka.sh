#!/usr/bin/env bash
# Runs a real Apache Kafka broker (one KRaft node that is broker and controller at once) from
# Kafka's jars on Maven Central, without Docker, for tests that need the reference broker
# rather than Tansu: transactions, consumer groups and Kafka's own tools behave exactly as in
# production.
#
#   bash scripts/local-kafka.sh start DIR   start a broker whose config, data and log live in
#                                           DIR; the last line of stdout is its bootstrap
#                                           address (127.0.0.1:PORT). Starting DIR again after
#                                           `stop` keeps its data and its port.
#   bash scripts/local-kafka.sh stop DIR    stop it (SIGTERM, then SIGKILL after 30 s); a no-op
#                                           when it is not running
#   bash scripts/local-kafka.sh kill DIR    kill it at once (SIGKILL), as a crash would; its
#                                           next start recovers its log
#   bash scripts/local-kafka.sh fetch       only fill the jar cache (scripts/setup.sh uses it)
#   bash scripts/local-kafka.sh classpath   print the classpath glob of those jars, to run
#                                           Kafka's tools, e.g.
#     java -cp "$(bash scripts/local-kafka.sh classpath)" \
#       org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server ADDR ...
#
# Needs Java 17+, and Maven while the cache (${SLUICE_TOOLS:-~/.cache/sluice-tools}/kafka-VERSION)
# is empty; python3 picks free ports. Environment: KAFKA_VERSION, KAFKA_EXTRA_PROPERTIES (lines
# appended to server.properties; later lines win), KAFKA_EXTRA_PROPERTIES_FILE, KAFKA_JVM_OPTS,
# KAFKA_LOG_LEVEL (INFO), KAFKA_START_TIMEOUT (60 s), KAFKA_STOP_TIMEOUT (30 s), and for secured
# listeners beside PLAINTEXT: KAFKA_EXTRA_LISTENERS (names such as "SSL SASL_SSL", each on a
# free port of its own with the security protocol of its name, written as NAME ADDRESS lines
# to DIR/listeners; their ssl.* and sasl.* settings go in KAFKA_EXTRA_PROPERTIES) and
# KAFKA_SCRAM_CREDENTIALS (lines such as SCRAM-SHA-512=[name=shop,password=...], stored at
# format time, as kafka-storage's --add-scram takes them).
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
# Kafka 4 logs through slf4j 1.7 into log4j2 but leaves the binding to the distribution; this is
# the log4j2 release Kafka 4.4.0 is built against.
LOG4J_VERSION=${LOG4J_VERSION:-2.25.5}
TOOLS=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}
KAFKA_HOME=$TOOLS/kafka-$KAFKA_VERSION
LIB=$KAFKA_HOME/lib
START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
# Sized for a 2-core test machine: SerialGC leaves the cores to the code under test, and C1-only
# compilation starts the broker about a second sooner without slowing test-sized traffic.
JVM_OPTS=${KAFKA_JVM_OPTS:--Xmx512m -Xms256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true}

say() { echo "local-kafka: $*" >&2; }
die() {
  say "$*"
  exit 1
}

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH; Kafka $KAFKA_VERSION needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
  v=${v#1.}
  [[ $v =~ ^[0-9]+$ ]] || die "could not tell the version of $(command -v java)"
  [ "$v" -ge 17 ] || die "$(command -v java) is Java $v; Kafka $KAFKA_VERSION needs Java 17 or newer"
}

need_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH (used to pick free ports)"
}

# The cache counts only once it is complete: Maven fills a directory beside it, which is then
# renamed into place, so an interrupted download is never mistaken for the jars.
fetch() {
  [ -f "$LIB/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  need_java
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH; it is needed once to download Kafka $KAFKA_VERSION into $KAFKA_HOME (Debian: apt-get install maven)"
  mkdir -p "$TOOLS"
  local tmp
  tmp=$(mktemp -d "$TOOLS/.kafka-$KAFKA_VERSION.XXXXXX")
  # shellcheck disable=SC2064 # expand $tmp now: it is local
  trap "rm -rf '$tmp'" EXIT
  say "downloading Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME"
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice</groupId>
  <artifactId>local-kafka</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- TopicCommand, the console producer and consumer, ConsumerGroupCommand -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <!-- only the Connect tools need it, and it brings Jetty and Jersey -->
        <exclusion>
          <groupId>org.apache.kafka</groupId>
          <artifactId>connect-runtime</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
  # Maven's output is shown only on failure: even with -q, Debian's Maven 3.8 prints bare
  # colour-reset escapes.
  if ! mvn -B -q -f "$tmp/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/lib" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    die "Maven could not download Kafka $KAFKA_VERSION (see above)"
  fi
  [ -f "$tmp/lib/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
  rm "$tmp/pom.xml" "$tmp/mvn.log"
  # -T: if a concurrent fetch won the race, fail instead of nesting inside its directory.
  mv -T "$tmp" "$KAFKA_HOME" 2>/dev/null || [ -f "$LIB/kafka_2.13-$KAFKA_VERSION.jar" ] ||
    die "could not move the download into $KAFKA_HOME"
  rm -rf "$tmp"
  trap - EXIT
  say "Kafka $KAFKA_VERSION: $(find "$LIB" -name '*.jar' | wc -l) jars, $(du -sh "$LIB" | cut -f1)"
}

# N (default two) distinct free loopback ports (all held open while choosing, so they differ). Python's
# start costs a third of a second behind a pyenv shim, hence one call for both.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))' "${1:-2}"
}

# Prints the first of the given ports that something else listens on. SO_REUSEADDR, as Java's
# server sockets have it, so the TIME_WAIT connections a stopped broker leaves do not count.
busy_port() {
  python3 -c '
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(p)))
    except OSError:
        print(p)
        break
    finally:
        s.close()' "$@"
}

# Kafka's Uuid.randomUuid, without paying a JVM start for it: 16 random bytes, URL-safe base64
# without padding, never starting with '-' (Kafka rejects that as a cluster id).
cluster_id() {
  python3 -c '
import base64, os
while True:
    u = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not u.startswith("-"):
        print(u)
        break'
}

# The pid in DIR/kafka.pid if that process is still this DIR's broker: a pid can be reused, and
# a dead broker that is still this shell's child lingers as a zombie (empty cmdline) that
# `kill -0` would call alive.
running_pid() {
  local dir=$1 pid cmd
  pid=$(cat "$dir/kafka.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *"kafka.Kafka $dir/server.properties"* ]] || return 1
  echo "$pid"
}

# Whether the broker this script just launched still runs. Judged by its state, not by its
# command line as running_pid does: while it execs from setsid to nohup to java the command
# line can read empty, and a broker starting under load was once taken for one that had
# exited. An exited child of this script stays a zombie (Z) until the script ends.
launched_alive() {
  local state
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

write_config() {
  local dir=$1 port=$2 cport=$3 level=${KAFKA_LOG_LEVEL:-INFO}
  shift 3
  # The extra listeners, each NAME on the next of the remaining ports.
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" name
  : >"$dir/listeners"
  for name in ${KAFKA_EXTRA_LISTENERS:-}; do
    [ "$#" -gt 0 ] || die "no port kept in $dir/ports for listener $name; use a new DIR"
    listeners="$listeners,$name://127.0.0.1:$1"
    protocols="$protocols,$name:$name"
    echo "$name 127.0.0.1:$1" >>"$dir/listeners"
    shift
  done
  cat >"$dir/server.properties" <<EOF
# Written by scripts/local-kafka.sh on every start; put changes in KAFKA_EXTRA_PROPERTIES.
process.roles=broker,controller
node.id=1
listeners=$listeners
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  if [ -n "${KAFKA_EXTRA_PROPERTIES_FILE:-}" ]; then
    [ -f "$KAFKA_EXTRA_PROPERTIES_FILE" ] || die "KAFKA_EXTRA_PROPERTIES_FILE=$KAFKA_EXTRA_PROPERTIES_FILE does not exist"
    cat "$KAFKA_EXTRA_PROPERTIES_FILE" >>"$dir/server.properties"
  fi
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
    printf '%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$dir/server.properties"
  fi
  # Kafka 4 configures log4j2 only; the broker's stdout is kafka.log. The config dumps and the
  # per-partition chatter are demoted so the log stays readable; "Kafka Server started", which
  # start waits for, comes from KafkaRaftServer at INFO.
  # log4j2's own shutdown hook would stop logging before Kafka's has logged its shutdown.
  cat >"$dir/log4j2.properties" <<EOF
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $level
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
logger.kconfig.name = kafka.server.KafkaConfig
logger.kconfig.level = WARN
logger.log.name = kafka.log
logger.log.level = WARN
logger.slog.name = org.apache.kafka.storage.internals.log
logger.slog.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
EOF
}

start() {
  local dir=$1
  need_java
  need_python
  fetch
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local port cport pid extra_ports=()
  # Ports are chosen once per DIR: the controller's address is written into the metadata log
  # at format time, and clients of an earlier run may still hold the bootstrap address.
  if [ -f "$dir/ports" ]; then
    read -r port cport extra <"$dir/ports"
    read -r -a extra_ports <<<"${extra:-}"
  fi
  if pid=$(running_pid "$dir"); then
    say "already running (pid $pid)"
    echo "127.0.0.1:$port"
    return 0
  fi
  if [ -z "${port:-}" ]; then
    local ports names=(${KAFKA_EXTRA_LISTENERS:-})
    ports=$(free_ports $((2 + ${#names[@]})))
    read -r port cport extra <<<"$ports"
    read -r -a extra_ports <<<"${extra:-}"
    echo "$ports" >"$dir/ports"
  else
    local busy
    busy=$(busy_port "$port" "$cport" "${extra_ports[@]}")
    [ -z "$busy" ] || die "port $busy, kept in $dir/ports, is taken by another process; stop it or use a new DIR"
  fi
  write_config "$dir" "$port" "$cport" "${extra_ports[@]}"
  local log4j=-Dlog4j2.configurationFile=$dir/log4j2.properties

  if [ ! -f "$dir/data/meta.properties" ]; then
    # --standalone makes this node the whole (dynamic, KIP-853) controller quorum.
    # shellcheck disable=SC2086 # JVM_OPTS is a list of options
    local scram=() credential
    while IFS= read -r credential; do
      [ -z "$credential" ] || scram+=(--add-scram "$credential")
    done <<<"${KAFKA_SCRAM_CREDENTIALS:-}"
    if ! java $JVM_OPTS "$log4j" -cp "$LIB/*" kafka.tools.StorageTool format --standalone \
      -t "$(cluster_id)" -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1; then
      cat "$dir/format.log" >&2
      die "formatting $dir/data failed"
    fi
  fi

  [ -f "$dir/kafka.log" ] && mv "$dir/kafka.log" "$dir/kafka.log.prev"
  # setsid: the broker outlives this script and a Ctrl-C meant for the caller's process group.
  # shellcheck disable=SC2086
  setsid nohup java $JVM_OPTS "$log4j" -cp "$LIB/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/kafka.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/kafka.pid"

  # Answering TCP is not enough: the broker listens before it has joined the quorum and been
  # unfenced, and it logs "Kafka Server started" only once it serves requests.
  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! launched_alive "$pid"; then
      say "Kafka exited during startup; end of $dir/kafka.log:"
      tail -n 40 "$dir/kafka.log" >&2
      rm -f "$dir/kafka.pid"
      exit 1
    fi
    if grep -q 'Kafka Server started' "$dir/kafka.log" &&
      timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "Kafka did not start within ${START_TIMEOUT}s; end of $dir/kafka.log:"
      tail -n 40 "$dir/kafka.log" >&2
      stop "$dir"
      exit 1
    fi
    sleep 0.2
  done
  say "Kafka $KAFKA_VERSION running (pid $pid, log $dir/kafka.log)"
  echo "127.0.0.1:$port"
}

stop() {
  local dir=$1 pid
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  if ! pid=$(running_pid "$dir"); then
    rm -f "$dir/kafka.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while running_pid "$dir" >/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.2
  done
  if running_pid "$dir" >/dev/null; then
    say "Kafka (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while running_pid "$dir" >/dev/null; do sleep 0.1; done
  fi
  rm -f "$dir/kafka.pid"
}

kill_now() {
  local dir=$1 pid
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  if pid=$(running_pid "$dir"); then
    kill -KILL "$pid" 2>/dev/null || true
    while running_pid "$dir" >/dev/null; do sleep 0.1; done
  fi
  rm -f "$dir/kafka.pid"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  start)
    [ $# -eq 2 ] || usage
    start "$2"
    ;;
  stop)
    [ $# -eq 2 ] || usage
    stop "$2"
    ;;
  kill)
    [ $# -eq 2 ] || usage
    kill_now "$2"
    ;;
  fetch)
    fetch
    ;;
  classpath)
    fetch
    echo "$LIB/*"
    ;;
  *) usage ;;
esac
