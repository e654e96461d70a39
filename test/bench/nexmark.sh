#!/usr/bin/env bash
# `make bench`: the engine's core path (read, decode, aggregate, commit) on
# Nexmark-like bids from Kafka, side by side in one run with the paths it
# competes with:
#   - kcat reading the topic into /dev/null (librdkafka's own cost),
#   - COPY of the same JSON lines into an unlogged jsonb table followed by
#     the same aggregation in plain SQL (INSERT ... SELECT ... GROUP BY ...
#     ON CONFLICT DO UPDATE): what users would write without the extension.
# CPU is what the process used (/proc/<pid>/stat, utime + stime, all its
# threads: librdkafka's included), wall is elapsed time.  kcat, the window
# aggregate and q0, whose targets are stated against kcat, are each the
# best of 3 runs by wall time (the first run's figures are printed too);
# kcat runs before each run of the aggregate, and again before each of
# q0's, and each is compared with the kcat runs between its own.  The windowed
# aggregate's result is checked row for row against plain SQL over the same
# rows.  Then events/s per CPU-second for Nexmark q0 (projection), q1
# (currency conversion), q2 (selection), a q5-style sliding-window count and
# a q7-style tumbling-window max.  And the window aggregate's throughput
# with parallelism 1 and 2, in batches of 100000 offsets, run by the pool
# workers from start() until every offset is committed (a slice that is
# behind holds the watermark back, so neither slice's rows are late for
# the other's; see the README on parallelism).
#
#   BENCH_EVENTS      bids in the topic (default 1000000; the mock cluster
#                     keeps about 5 MB per partition)
#   BENCH_PARTITIONS  partitions (default 32)

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

N=${BENCH_EVENTS:-1000000}
PARTS=${BENCH_PARTITIONS:-32}

BENCH_TEST_TOOLS=1 start_bench_cluster
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }
now() { date +%s.%N; }

coproc BROKER { "$REPO_ROOT/test/kafka/kafka_test_broker" --topic "bids:$PARTS"; }
BROKER_KILL=$BROKER_PID
read -r _ BOOTSTRAP <&"${BROKER[0]}"
BROKER_IN=${BROKER[1]}
BROKER_OUT=${BROKER[0]}

# one bid per millisecond of event time, 1000 auctions: every 10-second
# window holds every auction
log "producing $N bids to $PARTS partitions"
awk -v n="$N" 'BEGIN {
	for (i = 0; i < n; i++) {
		ms = i % 1000; s = int(i / 1000);
		printf "%d\t{\"auction\":%d,\"bidder\":%d,\"price\":%d,\"channel\":\"Google\",\"date_time\":\"2015-07-15 %02d:%02d:%02d.%03d+00\",\"extra\":\"\"}\n",
			i % 1000, 1000 + i % 1000, 1000 + (i * 7919) % 100000, 7919 * i % 997, int(s / 3600), int(s / 60) % 60, s % 60, ms
	}
}' >"$DIR/bids.tsv"
cut -f2 "$DIR/bids.tsv" >"$DIR/bids.json"
chown "$PG_OS_USER" "$DIR/bids.json"
echo "producefilek bids -1 $DIR/bids.tsv" >&"$BROKER_IN"
read -r reply <&"$BROKER_OUT"
[[ "$reply" == "ok $N" ]] || die "producing failed: $reply"

# cpu PID: utime + stime of a process in seconds
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

# kcat_once TAG: kcat reads the topic into /dev/null once; "wall cpu" is
# appended to $DIR/kcat_TAG.  kcat runs alternate with the runs of the
# query it is compared with (query's KCAT_TAG), so that both meet the same
# moments of this shared machine; kcat_best TAG prints the run of least
# wall time, "wall cpu"
kcat_once() {
	local t0 t1 out
	t0=$(now)
	out="$( { /usr/bin/time -f '%U %S' kcat -b "$BOOTSTRAP" -C -t bids -e -q -o beginning >/dev/null; } 2>&1)"
	t1=$(now)
	echo "$(echo "$t1 - $t0" | bc -l) $(echo "$out" | tail -1 | awk '{ print $1 + $2 }')" >>"$DIR/kcat_$1"
}
kcat_best() { sort -n -k1,1 "$DIR/kcat_$1" | head -1; }

SCHEMA='auction bigint, bidder bigint, price bigint, channel text, date_time timestamptz'
sql >/dev/null <<EOF
CREATE EXTENSION streaming;
ALTER DATABASE postgres SET streaming.autostart = off;
CREATE FUNCTION bench_cpu() RETURNS float8 LANGUAGE sql AS
\$\$SELECT (split_part(s, ' ', 14)::float8 + split_part(s, ' ', 15)::float8) / $(getconf CLK_TCK)
    FROM pg_read_file('/proc/self/stat') s\$\$;
EOF

# query NAME SELECT [event-time args] [RUNS]: a source of its own over the
# whole topic, the query, one run(); prints "wall|cpu|batches".  With RUNS
# (as kcat's best of 3), the query is reset to the topic's start and its
# result table emptied between runs, and the run of least wall time is
# printed, then "|wall|cpu" of the first run; with KCAT_TAG, kcat reads the
# topic before each run (kcat_once)
query() {
	local name=$1 select=$2 extra=${3:-} runs=${4:-1} best="" first="" out
	sql >/dev/null <<EOF
SELECT streaming.create_source('bids_$name', 'kafka', '$SCHEMA',
  '{"bootstrap_servers": "$BOOTSTRAP", "topic": "bids", "format": "json", "starting_offsets": "earliest"}');
SELECT streaming.create_query('$name', \$q\$${select//bids/bids_$name}\$q\$ $extra);
EOF
	for ((r = 1; r <= runs; r++)); do
		[[ -n "${KCAT_TAG:-}" ]] && kcat_once "$KCAT_TAG"
		if ((r > 1)); then
			sql >/dev/null -c "SELECT streaming.reset_query('$name', start_from => 'earliest')" -c "TRUNCATE $name"
		fi
		out=$(sql <<EOF
SELECT bench_cpu() AS c0, extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT streaming.run('$name') AS batches \gset
SELECT extract(epoch FROM clock_timestamp()) - :t0, bench_cpu() - :c0, :batches;
EOF
)
		[[ -z "$first" ]] && first=$out
		if [[ -z "$best" ]] || (($(echo "${out%%|*} < ${best%%|*}" | bc -l))); then best=$out; fi
	done
	if ((runs > 1)); then
		local f=${first%|*}
		echo "$best|$f"
	else
		echo "$best"
	fi
}

log "the windowed aggregate (update mode, watermark 5 s)"
WINDOW_Q="SELECT streaming.window(date_time, '10 seconds') AS w, auction, count(*) AS n, max(price) AS top FROM bids GROUP BY 1, 2"
IFS='|' read -r AGG_S AGG_CPU AGG_B AGG1_S AGG1_CPU < <(KCAT_TAG=agg query agg "$WINDOW_Q" ", event_time => 'date_time', watermark => '5 seconds', output_mode => 'update'" 3)
read -r KCAT_S KCAT_CPU < <(kcat_best agg)

log "COPY + re-aggregate in plain SQL"
IFS='|' read -r COPY_S COPY_CPU < <(sql <<EOF
CREATE UNLOGGED TABLE raw_bids (doc jsonb);
CREATE TABLE plain_agg (w tstzrange, auction bigint, n bigint, top bigint, PRIMARY KEY (w, auction));
SELECT bench_cpu() AS c0, extract(epoch FROM clock_timestamp()) AS t0 \gset
COPY raw_bids FROM '$DIR/bids.json' WITH (FORMAT text);
INSERT INTO plain_agg
SELECT tstzrange(b, b + interval '10 seconds'), auction, count(*), max(price)
  FROM (SELECT date_bin('10 seconds', (doc->>'date_time')::timestamptz, 'epoch') AS b,
               (doc->>'auction')::bigint AS auction, (doc->>'price')::bigint AS price FROM raw_bids) s
 GROUP BY 1, 2
ON CONFLICT (w, auction) DO UPDATE SET n = plain_agg.n + EXCLUDED.n, top = greatest(plain_agg.top, EXCLUDED.top);
SELECT extract(epoch FROM clock_timestamp()) - :t0, bench_cpu() - :c0;
EOF
)
CHECK="$(sql -c "SELECT (SELECT count(*) FROM agg) || ' rows, ' ||
  (SELECT count(*) FROM (SELECT w, auction, n, top FROM agg EXCEPT SELECT * FROM plain_agg) a) || ' + ' ||
  (SELECT count(*) FROM (SELECT * FROM plain_agg EXCEPT SELECT w, auction, n, top FROM agg) b) || ' differ'")"

# the same aggregate over the same JSON lines read from a file source: the
# engine's path (read, decode, aggregate, commit) without librdkafka
log "the windowed aggregate over a file source of the same lines"
mkdir -p "$DIR/fdir"
ln -f "$DIR/bids.json" "$DIR/fdir/bids.json"
chown -R "$PG_OS_USER" "$DIR/fdir"
sql >/dev/null <<EOF
SELECT streaming.create_source('bids_file', 'file', '$SCHEMA', '{"path": "$DIR/fdir", "format": "json"}');
SELECT streaming.create_query('fagg', \$q\$${WINDOW_Q//bids/bids_file}\$q\$, event_time => 'date_time',
  watermark => '5 seconds', output_mode => 'update');
EOF
IFS='|' read -r FILE_S FILE_CPU FILE_B < <(sql <<EOF
SELECT bench_cpu() AS c0, extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT streaming.run('fagg') AS batches \gset
SELECT extract(epoch FROM clock_timestamp()) - :t0, bench_cpu() - :c0, :batches;
EOF
)
FILE_CHECK="$(sql -c "SELECT (SELECT count(*) FROM (SELECT w, auction, n, top FROM fagg EXCEPT SELECT * FROM plain_agg) a) +
  (SELECT count(*) FROM (SELECT * FROM plain_agg EXCEPT SELECT w, auction, n, top FROM fagg) b)")"

# par_run NAME N: the window aggregate with parallelism N, run by the pool
# workers until it has read the whole topic; prints "wall cpu broker-cpu"
# (CPU: the pool workers', librdkafka's threads included; the mock
# broker's, which shares the machine's cores, meanwhile)
par_run() {
	local name=$1 n=$2 t0 t1 pids cpu0=0 cpu1=0 pid b0 b1
	sql >/dev/null <<EOF
SELECT streaming.create_source('bids_$name', 'kafka', '$SCHEMA',
  '{"bootstrap_servers": "$BOOTSTRAP", "topic": "bids", "format": "json", "starting_offsets": "earliest",
    "max_offsets_per_trigger": 100000}');
SELECT streaming.create_query('$name', \$q\$${WINDOW_Q//bids/bids_$name}\$q\$, event_time => 'date_time',
  watermark => '5 seconds', output_mode => 'update', parallelism => $n, start => false);
EOF
	t0=$(now)
	sql -c "SELECT streaming.start('$name')" >/dev/null
	# the pool grows to a worker per slice as start() returns
	until (($(sql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'") >= n)); do
		sleep 0.01
	done
	pids=$(sql -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'streaming query'")
	for pid in $pids; do cpu0=$(echo "$cpu0 + $(cpu "$pid")" | bc -l); done
	b0=$(cpu "$BROKER_PROC")
	until [[ "$(sql -c "SELECT coalesce(sum(\"offset\"), 0) FROM streaming.offsets WHERE query = '$name'")" == "$N" ]]; do
		sleep 0.02
	done
	t1=$(now)
	for pid in $pids; do cpu1=$(echo "$cpu1 + $(cpu "$pid")" | bc -l); done
	b1=$(cpu "$BROKER_PROC")
	sql -c "SELECT streaming.stop('$name')" >/dev/null
	echo "$(echo "$t1 - $t0" | bc -l) $(echo "$cpu1 - $cpu0" | bc -l) $(echo "$b1 - $b0" | bc -l)"
}

log "the window aggregate at parallelism 1 and 2, on the pool workers"
# the broker itself: the coprocess's child, or the coprocess
BROKER_PROC=$(pgrep -P "$BROKER_PID" -f kafka_test_broker | head -1)
BROKER_PROC=${BROKER_PROC:-$BROKER_PID}
read -r P1_S P1_CPU P1_B < <(par_run par1 1)
read -r P2_S P2_CPU P2_B < <(par_run par2 2)
PAR_CHECK="$(sql -c "SELECT (SELECT count(*) FROM (SELECT w, auction, n, top FROM par1 EXCEPT SELECT * FROM plain_agg) a) +
  (SELECT count(*) FROM (SELECT * FROM plain_agg EXCEPT SELECT w, auction, n, top FROM par1) b) || ' and ' ||
  (SELECT count(*) FROM (SELECT w, auction, n, top FROM par2 EXCEPT SELECT * FROM plain_agg) a) +
  (SELECT count(*) FROM (SELECT * FROM plain_agg EXCEPT SELECT w, auction, n, top FROM par2) b) || ' rows differ; ' ||
  (SELECT count(*) FROM streaming.progress WHERE query = 'par2') || ' batches at parallelism 2, ' ||
  (SELECT round(sum((duration_ms->>'merge_wait')::numeric) / 1000, 2) FROM streaming.progress WHERE query = 'par2') ||
  ' s waiting for the other slice''s merges'")"

log "Nexmark queries"
IFS='|' read -r Q0_S Q0_CPU _ Q01_S Q01_CPU < <(KCAT_TAG=q0 query q0 "SELECT auction, bidder, price, date_time FROM bids" "" 3)
read -r KCAT_Q0_S _ < <(kcat_best q0)
IFS='|' read -r Q1_S Q1_CPU _ < <(query q1 "SELECT auction, bidder, (0.908 * price)::numeric(12, 2) AS price, date_time FROM bids")
IFS='|' read -r Q2_S Q2_CPU _ < <(query q2 "SELECT auction, price FROM bids WHERE auction % 123 = 0")
IFS='|' read -r Q5_S Q5_CPU _ < <(query q5 "SELECT streaming.window(date_time, '10 seconds', '2 seconds') AS w, auction, count(*) AS n FROM bids GROUP BY 1, 2" \
	", event_time => 'date_time', watermark => '5 seconds', output_mode => 'update'")
IFS='|' read -r Q7_S Q7_CPU _ < <(query q7 "SELECT streaming.window(date_time, '10 seconds') AS w, max(price) AS top FROM bids GROUP BY 1" \
	", event_time => 'date_time', watermark => '5 seconds', output_mode => 'append'")

echo "quit" >&"$BROKER_IN" || true

per_m() { echo "$1 * 1000000 / $N" | bc -l; }
echo
echo "Nexmark bids, $N JSON messages (~$(($(stat -c %s "$DIR/bids.json") / N)) bytes) in $PARTS partitions of librdkafka's mock cluster, $(nproc) cores"
printf '%-52s %8s %8s %14s\n' "path" "wall s" "CPU s" "CPU s per 1M"
printf '%-52s %8.2f %8.2f %14.2f\n' "kcat -C -e -q > /dev/null (best of 3)" "$KCAT_S" "$KCAT_CPU" "$(per_m "$KCAT_CPU")"
printf '%-52s %8.2f %8.2f %14.2f\n' "streaming.run() of the window aggregate (best of 3)" "$AGG_S" "$AGG_CPU" "$(per_m "$AGG_CPU")"
printf '%-52s %8.2f %8.2f %14.2f\n' "COPY into jsonb + INSERT ... GROUP BY ... ON CONFLICT" "$COPY_S" "$COPY_CPU" "$(per_m "$COPY_CPU")"
printf '%-52s %8.2f %8.2f %14.2f\n' "streaming.run() of it over a file source ($FILE_B batch)" "$FILE_S" "$FILE_CPU" "$(per_m "$FILE_CPU")"
echo "result check against plain SQL: $CHECK; over the file source: $FILE_CHECK rows differ"
printf 'window aggregate: CPU = kcat + %.2f CPU-s per 1M (target <= 1.0); %.2fx the CPU of COPY + re-aggregate (target <= 0.25); wall %.2fx kcat (target >= 0.7)\n' \
	"$(per_m "$(echo "$AGG_CPU - $KCAT_CPU" | bc -l)")" "$(echo "$AGG_CPU / $COPY_CPU" | bc -l)" "$(echo "$KCAT_S / $AGG_S" | bc -l)"
printf 'the window aggregate ran %s batch each time; its first run: %.2f s, %.2f CPU-s (kcat + %.2f)\n' "$AGG_B" "$AGG1_S" "$AGG1_CPU" "$(per_m "$(echo "$AGG1_CPU - $KCAT_CPU" | bc -l)")"
printf 'without librdkafka: the file source %.2fx the CPU of COPY + re-aggregate; the Kafka run less kcat %.2fx\n' \
	"$(echo "$FILE_CPU / $COPY_CPU" | bc -l)" "$(echo "($AGG_CPU - $KCAT_CPU) / $COPY_CPU" | bc -l)"
echo
printf '%-52s %8s %8s %14s\n' "window aggregate, batches of 100000 offsets" "wall s" "CPU s" "events/s"
printf '%-52s %8.2f %8.2f %14.0f\n' "parallelism 1 (one pool worker)" "$P1_S" "$P1_CPU" "$(echo "$N / $P1_S" | bc -l)"
printf '%-52s %8.2f %8.2f %14.0f\n' "parallelism 2 (two pool workers, a slice each)" "$P2_S" "$P2_CPU" "$(echo "$N / $P2_S" | bc -l)"
printf 'parallelism 2: %.2fx the throughput of parallelism 1 (the mock broker used %.2f and %.2f CPU-s meanwhile); against plain SQL: %s\n' \
	"$(echo "$P1_S / $P2_S" | bc -l)" "$P1_B" "$P2_B" "$PAR_CHECK"
echo
printf '%-52s %8s %8s %14s\n' "Nexmark query" "wall s" "CPU s" "events/CPU-s"
nx() { printf '%-52s %8.2f %8.2f %14.0f\n' "$1" "$2" "$3" "$(echo "$N / $3" | bc -l)"; }
nx "q0 projection" "$Q0_S" "$Q0_CPU"
nx "q1 currency conversion" "$Q1_S" "$Q1_CPU"
nx "q2 selection" "$Q2_S" "$Q2_CPU"
nx "q5-style sliding window count (10 s, slide 2 s)" "$Q5_S" "$Q5_CPU"
nx "q7-style tumbling window max (10 s, append)" "$Q7_S" "$Q7_CPU"
printf 'q0 wall %.2fx kcat (target >= 0.8; q0 best of 3, its first run %.2f s, %.2f CPU-s; kcat best of the 3 runs between q0'"'"'s, %.2f s)\n' "$(echo "$KCAT_Q0_S / $Q0_S" | bc -l)" "$Q01_S" "$Q01_CPU" "$KCAT_Q0_S"
