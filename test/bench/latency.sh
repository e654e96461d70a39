#!/usr/bin/env bash
# `make bench`: how long a message takes from a Kafka producer to a
# committed row of a continuous query run by its background worker.
#
# test/kafka/kafka_rate_producer writes csv messages "SEQ,MICROS" (MICROS:
# when it handed the message to librdkafka) at a fixed rate for
# LAT_SECONDS to a topic of LAT_PARTITIONS partitions in librdkafka's mock
# cluster (test/kafka).  The query `SELECT seq, pus FROM lat` (trigger '0')
# appends them to its result table; a row's visibility is the commit time
# of the batch that wrote it, pg_xact_commit_timestamp(xmin) (the cluster
# runs with track_commit_timestamp = on).  Latency = commit time - MICROS,
# over the messages produced after a LAT_WARMUP-second warm-up: p50, p99
# and max, per rate; and how long the query took to catch up once the
# producer stopped (a growing backlog shows there).  Where the time goes:
# "batch ms" is the p50 / p99 of the batches' own duration (progress
# duration_ms.trigger_execution: planning, decoding, the query, commit);
# the rest of a message's latency is spent before its batch began (the
# producer's linger, the broker, the consumer's fetch, the wait for the
# batch before it).
#
# Two settings make the mock cluster behave as a real broker would, so that
# the engine is measured rather than the mock:
# - the mock answers a fetch with at most one record batch per partition,
#   so the producer gathers messages for LAT_LINGER ms, time that counts
#   in the latency measured (a real broker returns every batch up to the
#   fetch's byte limits);
# - the mock holds every fetch that finds nothing for the whole
#   fetch.wait.max.ms, even when messages arrive meanwhile (a real broker
#   answers as soon as they do), so the source sets
#   kafka.fetch.wait.max.ms to LAT_FETCH_WAIT ms.
#
#   LAT_RATES       messages per second, one run each (default "10000 50000")
#   LAT_SECONDS     producing time per run (default 20)
#   LAT_WARMUP      seconds left out at the start (default 2)
#   LAT_PARTITIONS  partitions (default 8)
#   LAT_LINGER      the producer's linger.ms (default 20)
#   LAT_FETCH_WAIT  the source's kafka.fetch.wait.max.ms (default 5; empty:
#                   the worker's own default of 100)
#   LAT_OPTIONS     more source options, e.g. '"max_offsets_per_trigger": 5000'

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

RATES=${LAT_RATES:-"10000 50000"}
SECONDS_RUN=${LAT_SECONDS:-20}
WARMUP=${LAT_WARMUP:-2}
PARTS=${LAT_PARTITIONS:-8}
LINGER=${LAT_LINGER:-20}
FETCH_WAIT=${LAT_FETCH_WAIT-5}
EXTRA=""
[[ -n "$FETCH_WAIT" ]] && EXTRA=", \"kafka.fetch.wait.max.ms\": \"$FETCH_WAIT\""
EXTRA="$EXTRA${LAT_OPTIONS:+, $LAT_OPTIONS}"

BENCH_TEST_TOOLS=1 start_bench_cluster
configure_cluster "$DIR" 'track_commit_timestamp = on'
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }

coproc BROKER { "$REPO_ROOT/test/kafka/kafka_test_broker"; }
BROKER_KILL=$BROKER_PID
read -r _ BOOTSTRAP <&"${BROKER[0]}"
BROKER_IN=${BROKER[1]}
BROKER_OUT=${BROKER[0]}

sql >/dev/null <<EOF
CREATE EXTENSION streaming;
EOF

RESULTS=()
for RATE in $RATES; do
	TOPIC="lat$RATE"
	echo "topic $TOPIC $PARTS" >&"$BROKER_IN"
	read -r reply <&"$BROKER_OUT"
	[[ "$reply" == ok* ]] || die "creating topic $TOPIC failed: $reply"
	sql >/dev/null <<-EOF
		SELECT streaming.create_source('lat', 'kafka', 'seq bigint, pus bigint',
		  '{"bootstrap_servers": "$BOOTSTRAP", "topic": "$TOPIC", "format": "csv", "starting_offsets": "earliest"$EXTRA}');
		SELECT streaming.create_query('lat_rows', 'SELECT seq, pus FROM lat');
	EOF
	# the worker is up and past its first batch (which records the start)
	for _ in $(seq 600); do
		[[ "$(sql -c "SELECT last_batch_id >= 0 FROM streaming.queries WHERE name = 'lat_rows'")" == t ]] && break
		sleep 0.1
	done

	log "producing $RATE messages/s to $PARTS partitions for $SECONDS_RUN s"
	read -r _ SENT _ FAILED < <("$REPO_ROOT/test/kafka/kafka_rate_producer" "$BOOTSTRAP" "$TOPIC" \
		"$PARTS" "$RATE" "$SECONDS_RUN" "$LINGER")
	[[ "$FAILED" == 0 ]] || die "the producer lost $FAILED messages"
	t_stop=$(date +%s.%N)
	got=0
	for _ in $(seq 1200); do
		got="$(sql -c "SELECT count(*) FROM lat_rows")"
		[[ "$got" == "$SENT" ]] && break
		sleep 0.1
	done
	if [[ "$got" == "$SENT" ]]; then
		CATCHUP="$(sql -c "SELECT round((extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) - $t_stop)::numeric, 2) FROM lat_rows")"
		CATCHUP="$(echo "if ($CATCHUP < 0) 0 else $CATCHUP" | bc -l)"
		[[ "$(sql -c "SELECT count(DISTINCT seq) = $SENT AND min(seq) = 1 AND max(seq) = $SENT FROM lat_rows")" == t ]] ||
			die "the result table does not hold each message once"
	else
		# a benchmark: the figures of the rows committed so far, and the shortfall
		warn "the query has $got of $SENT messages 120 s after the producer stopped"
		CATCHUP=">120($got)"
	fi
	STATS="$(sql -F ' ' -c "
		WITH l AS (
			SELECT (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1e6 - pus) / 1000.0 AS ms
			  FROM lat_rows
			 WHERE pus >= (SELECT min(pus) FROM lat_rows) + $WARMUP * 1000000)
		SELECT count(*),
		       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
		       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
		       round(max(ms)::numeric, 1)
		  FROM l")"
	BATCHES="$(sql -c "SELECT last_batch_id + 1 FROM streaming.queries WHERE name = 'lat_rows'")"
	BATCH_MS="$(sql -F ' ' -c "
		SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),
		       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1)
		  FROM (SELECT (duration_ms->>'trigger_execution')::float8 AS d
		          FROM streaming.progress WHERE query = 'lat_rows' AND input_rows > 0) p")"
	RESULTS+=("$RATE $SENT $STATS $BATCHES $BATCH_MS $CATCHUP")
	sql >/dev/null <<-EOF
		SELECT streaming.drop_query('lat_rows');
		SELECT streaming.drop_source('lat');
	EOF
done
echo "quit" >&"$BROKER_IN" || true

echo
echo "Kafka produce -> commit latency, query 'SELECT seq, pus FROM lat' (trigger '0', worker), $PARTS partitions,"
echo "librdkafka mock cluster on loopback, $(nproc) cores, $SECONDS_RUN s per rate, first $WARMUP s left out,"
echo "producer linger.ms $LINGER${EXTRA:+; source options$EXTRA}"
printf '%10s %9s %9s %9s %9s %9s %9s %9s %9s %12s\n' "msg/s" "sent" "measured" "p50 ms" "p99 ms" "max ms" "batches" \
	"batch p50" "batch p99" "catch-up s"
for r in "${RESULTS[@]}"; do
	read -r rate sent n p50 p99 max batches bp50 bp99 catchup <<<"$r"
	printf '%10s %9s %9s %9s %9s %9s %9s %9s %9s %12s\n' "$rate" "$sent" "$n" "$p50" "$p99" "$max" "$batches" \
		"$bp50" "$bp99" "$catchup"
done
