#!/usr/bin/env bash
# `make bench`: how long a row inserted into a table takes to reach the
# results of continuous queries over a table source, run by their
# background workers.
#
# TLAT_CLIENTS pgbench clients insert single rows into `events`, TLAT_RATE
# rows per second in total (pgbench -R), for TLAT_WARMUP + TLAT_SECONDS
# seconds; the clients commit with synchronous_commit = on, as an
# application would (the cluster's default is off).  Two started queries
# (trigger '0') follow the table through a table source:
#   copied   `SELECT id, client, v FROM events_s`: appends each row;
#   buckets  `SELECT id / 50 AS bucket, count(*), sum(v) FROM events_s
#            GROUP BY 1`, output_mode 'update': rewrites a bucket's row at
#            each batch that brings rows of it.
# A row's visibility is the commit time of the batch that wrote it,
# pg_xact_commit_timestamp(xmin) (track_commit_timestamp = on), and its
# latency that minus the commit time of the insert (its xmin in events).
# For buckets, a bucket's last write is the batch that took its last
# committed row: one latency per bucket, of that row.  Rows committed in
# the first TLAT_WARMUP seconds are left out.  p50 / p99 / max per query;
# "first 5 s" / "last 5 s" are the p50 at the start and end of the
# measured time (a backlog that grows shows as a rising p50), and
# "catch-up s" how long after the clients stopped the query had every
# row.  "batch ms": p50 / p99 of the batches' own duration (progress
# duration_ms.trigger_execution).
#
#   TLAT_RATE     rows per second, all clients together (default 5000)
#   TLAT_CLIENTS  pgbench clients (default 4)
#   TLAT_SECONDS  measured seconds (default 20)
#   TLAT_WARMUP   seconds left out at the start (default 2)
#   TLAT_SETTINGS more postgresql.conf lines, separated by ';'
#                 (e.g. 'streaming.idle_poll = 50')
#   TLAT_DETAIL=1 also the p50 / max of each second, per query

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

RATE=${TLAT_RATE:-5000}
CLIENTS=${TLAT_CLIENTS:-4}
SECONDS_RUN=${TLAT_SECONDS:-20}
WARMUP=${TLAT_WARMUP:-2}
SETTINGS=${TLAT_SETTINGS:-}

start_bench_cluster
IFS=';' read -r -a extra <<<"$SETTINGS"
configure_cluster "$DIR" 'track_commit_timestamp = on' 'streaming.launcher_naptime = 1' "${extra[@]}"
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }

sql >/dev/null <<'EOF'
CREATE EXTENSION streaming;
CREATE TABLE events (id bigserial PRIMARY KEY, client int NOT NULL, v int NOT NULL);
SELECT streaming.create_source('events_s', 'table', options => '{"table": "public.events"}');
SELECT streaming.create_query('copied', $$SELECT id, client, v FROM events_s$$);
SELECT streaming.create_query('buckets',
         $$SELECT id / 50 AS bucket, count(*) AS n, sum(v) AS total FROM events_s GROUP BY 1$$,
         output_mode => 'update');
EOF
# the workers made the slots: the streams start there
for _ in $(seq 600); do
	[[ "$(sql -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'")" == 2 ]] && break
	sleep 0.1
done

SCRIPT="$DIR/insert.sql"
cat >"$SCRIPT" <<'EOF'
\set v random(1, 1000)
INSERT INTO events (client, v) VALUES (:client_id, :v);
EOF
chmod 644 "$SCRIPT"
TOTAL=$((WARMUP + SECONDS_RUN))
log "$CLIENTS clients insert $RATE rows/s for $TOTAL s"
PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PGOPTIONS='-c synchronous_commit=on' \
	"$PG_BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -R "$RATE" -T "$TOTAL" -f "$SCRIPT" postgres \
	>"$DIR/pgbench.out" 2>&1 || { cat "$DIR/pgbench.out" >&2; die "pgbench failed"; }
t_stop=$(date +%s.%N)
SENT="$(sql -c "SELECT count(*) FROM events")"
LATE="$(sed -n 's/^number of transactions skipped: \([0-9]*\).*/\1/p' "$DIR/pgbench.out")"

for _ in $(seq 1200); do
	[[ "$(sql -c "SELECT (SELECT count(*) FROM copied) = $SENT AND (SELECT sum(n) FROM buckets) = $SENT")" == t ]] && break
	sleep 0.1
done
[[ "$(sql -c "SELECT count(*) = $SENT FROM (SELECT id FROM events INTERSECT SELECT id FROM copied) x")" == t ]] ||
	die "the query 'copied' does not hold each row once"
[[ "$(sql -c "SELECT count(*) = 0 FROM (SELECT id / 50, count(*), sum(v) FROM events GROUP BY 1
                                         EXCEPT SELECT bucket, n, total FROM buckets) x")" == t ]] ||
	die "the query 'buckets' does not equal plain SQL over the table"

# one latency (ms) per row of rows, per bucket of buckets, with the insert's commit time
LAT_ROWS="SELECT extract(epoch FROM pg_xact_commit_timestamp(e.xmin)) AS t,
                 extract(epoch FROM pg_xact_commit_timestamp(r.xmin) - pg_xact_commit_timestamp(e.xmin)) * 1000 AS ms
            FROM events e JOIN copied r USING (id)"
LAT_BUCKETS="SELECT t, extract(epoch FROM pg_xact_commit_timestamp(b.xmin)) * 1000 - t * 1000 AS ms
               FROM buckets b
               JOIN (SELECT id / 50 AS bucket, max(extract(epoch FROM pg_xact_commit_timestamp(xmin))) AS t
                       FROM events GROUP BY 1) e USING (bucket)"
stats() {
	local query=$1 lat=$2
	sql -F ' ' -c "
		WITH l AS ($lat), s AS (SELECT min(t) + $WARMUP AS t0, max(t) AS t1 FROM l),
		     m AS (SELECT l.* FROM l, s WHERE l.t >= s.t0)
		SELECT '$query', count(*),
		       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
		       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
		       round(max(ms)::numeric, 1),
		       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM m, s WHERE m.t < s.t0 + 5),
		       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM m, s WHERE m.t > s.t1 - 5),
		       (SELECT last_batch_id + 1 FROM streaming.queries WHERE name = '$query'),
		       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1) || ' ' ||
		               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1)
		          FROM (SELECT (duration_ms->>'trigger_execution')::float8 AS d FROM streaming.progress
		                 WHERE query = '$query' AND input_rows > 0) p),
		       (SELECT round(greatest(extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) - $t_stop, 0)::numeric, 2)
		          FROM $query)
		  FROM m"
}
if [[ "${TLAT_DETAIL:-0}" == 1 ]]; then
	for q in copied buckets; do
		[[ $q == copied ]] && lat=$LAT_ROWS || lat=$LAT_BUCKETS
		echo "$q: second, rows, p50 ms, max ms"
		sql -F ' ' -c "WITH l AS ($lat), s AS (SELECT floor(t - min(t) OVER ()) AS s, ms FROM l)
			SELECT s, count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
			       round(max(ms)::numeric, 1) FROM s GROUP BY s ORDER BY s"
	done
fi
RESULTS=("$(stats copied "$LAT_ROWS")" "$(stats buckets "$LAT_BUCKETS")")

echo
echo "Table source: insert commit -> result commit latency, $CLIENTS pgbench clients, $RATE single-row inserts/s"
echo "in total ($SENT rows in $TOTAL s, ${LATE:-0} behind schedule), first $WARMUP s left out; two started queries"
echo "(trigger '0', pool workers) over one table source; $(nproc) cores${SETTINGS:+; $SETTINGS}"
printf '%8s %9s %8s %8s %8s %10s %10s %8s %9s %9s %11s\n' "query" "measured" "p50 ms" "p99 ms" "max ms" \
	"first 5 s" "last 5 s" "batches" "batch p50" "batch p99" "catch-up s"
for r in "${RESULTS[@]}"; do
	read -r q n p50 p99 max first last batches bp50 bp99 catchup <<<"$r"
	printf '%8s %9s %8s %8s %8s %10s %10s %8s %9s %9s %11s\n' "$q" "$n" "$p50" "$p99" "$max" "$first" "$last" \
		"$batches" "$bp50" "$bp99" "$catchup"
done
