#!/usr/bin/env bash
# `make bench`: how fast a continuous query consumes a pre-loaded Kafka topic,
# side by side with kcat reading the same topic into /dev/null, in the same
# run.  The topic lives in librdkafka's mock cluster (test/kafka).
#
#   BENCH_MESSAGES    messages in the topic (default 800000; the mock cluster keeps about
#                     5 MB per partition, so stay under that)
#   BENCH_PARTITIONS  partitions (default 8)
#
# Prints one line per reader: messages, seconds, messages/s, and the ratio
# to kcat.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

N=${BENCH_MESSAGES:-800000}
PARTS=${BENCH_PARTITIONS:-8}

BENCH_TEST_TOOLS=1 start_bench_cluster
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }
now() { date +%s.%N; }

coproc BROKER { "$REPO_ROOT/test/kafka/kafka_test_broker" --topic "bench:$PARTS"; }
BROKER_KILL=$BROKER_PID
read -r _ BOOTSTRAP <&"${BROKER[0]}"
BROKER_IN=${BROKER[1]}
BROKER_OUT=${BROKER[0]}

log "producing $N messages to $PARTS partitions"
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "k%d\t{\"device\": \"k%d\", \"v\": %d}\n", i % 100, i % 100, i }' \
	>"$DIR/messages"
echo "producefilek bench -1 $DIR/messages" >&"$BROKER_IN"
read -r reply <&"$BROKER_OUT"
[[ "$reply" == "ok $N" ]] || die "producing failed: $reply"

got="$(kcat -b "$BOOTSTRAP" -C -t bench -e -q -o beginning | wc -l)"
[[ "$got" == "$N" ]] || die "kcat read $got messages, expected $N"

log "kcat -C -e -q into /dev/null (best of 3)"
KCAT_S=""
for _ in 1 2 3; do
	t0=$(now)
	kcat -b "$BOOTSTRAP" -C -t bench -e -q -o beginning >/dev/null
	t1=$(now)
	s=$(echo "$t1 - $t0" | bc -l)
	if [[ -z "$KCAT_S" ]] || (($(echo "$s < $KCAT_S" | bc -l))); then KCAT_S=$s; fi
done

sql >/dev/null <<EOF
CREATE EXTENSION streaming;
ALTER DATABASE postgres SET streaming.autostart = off;
EOF
sql >/dev/null <<EOF
SELECT streaming.create_source('bench_raw', 'kafka', NULL,
  '{"bootstrap_servers": "$BOOTSTRAP", "topic": "bench", "starting_offsets": "earliest"}');
SELECT streaming.create_source('bench_json', 'kafka', 'device text, v int',
  '{"bootstrap_servers": "$BOOTSTRAP", "topic": "bench", "format": "json", "starting_offsets": "earliest"}');
SELECT streaming.create_source('bench_batched', 'kafka', NULL,
  '{"bootstrap_servers": "$BOOTSTRAP", "topic": "bench", "starting_offsets": "earliest",
    "max_offsets_per_trigger": 100000}');
SELECT streaming.create_query('by_key_raw', 'SELECT key, count(*) AS n FROM bench_raw GROUP BY key', output_mode => 'update');
SELECT streaming.create_query('by_key_json', 'SELECT device, count(*) AS n FROM bench_json GROUP BY device', output_mode => 'update');
SELECT streaming.create_query('by_key_batched', 'SELECT key, count(*) AS n FROM bench_batched GROUP BY key', output_mode => 'update');
EOF

# run QUERY: all of the topic through the query; prints seconds and batches
run_query() {
	local q=$1 t0 t1 batches total
	t0=$(now)
	batches="$(sql -c "SELECT streaming.run('$q')")"
	t1=$(now)
	total="$(sql -c "SELECT sum(n) FROM $q")"
	[[ "$total" == "$N" ]] || die "$q counted $total messages, expected $N"
	echo "$(echo "$t1 - $t0" | bc -l) $batches"
}

log "running the queries"
read -r RAW_S RAW_B < <(run_query by_key_raw)
read -r JSON_S JSON_B < <(run_query by_key_json)
read -r BATCHED_S BATCHED_B < <(run_query by_key_batched)


echo "quit" >&"$BROKER_IN" || true

echo
echo "Kafka consumption, $N messages in $PARTS partitions (librdkafka mock cluster on loopback), $(nproc) cores"
printf '%-58s %9s %8s %12s %9s\n' "reader" "messages" "seconds" "messages/s" "vs kcat"
line() { printf '%-58s %9d %8.2f %12.0f %8.2fx\n' "$1" "$N" "$2" "$(echo "$N / $2" | bc -l)" "$(echo "$KCAT_S / $2" | bc -l)"; }
line "kcat -C -e -q > /dev/null (best of 3)" "$KCAT_S"
line "SELECT key, count(*) ... GROUP BY key  (raw, $RAW_B batch)" "$RAW_S"
line "SELECT device, count(*) ... GROUP BY device (json, $JSON_B batch)" "$JSON_S"
line "raw, max_offsets_per_trigger 100000 ($BATCHED_B batches)" "$BATCHED_S"
