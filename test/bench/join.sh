#!/usr/bin/env bash
# `make bench`: what a batch of a join between two streams costs as the
# joined history grows, side by side with recomputing the join over the
# history.  Two deterministic rate sources add BENCH_BATCH rows each per
# batch; the query counts, per key, the pairs of equal values (each new
# row has one partner, of the same batch, and finds none in the kept rows):
#
#   SELECT a.value % 100 AS k, count(*) FROM left_ticks a JOIN right_ticks b
#       ON a.value = b.value GROUP BY 1
#
# so a batch's cost should be its input plus one index probe of the other
# side's state per new row, whatever the size of the states.  The reference
# is the same aggregate recomputed over both histories (a materialized
# view refreshed after the same new rows).
#
# The same join bounded in event time, with watermarks on both sources
# (every row of batch b is stamped b seconds after the start):
#
#   ... ON a.value = b.value AND b."timestamp" BETWEEN a."timestamp" - '2 s'
#                                                  AND a."timestamp" + '2 s'
#
# keeps only the rows that can still match, whatever the history: its
# states stay at a few batches while the history grows 10x, and so does
# the cost of its batch.
#
#   BENCH_BATCH    rows per source per batch (default 5000)
#   BENCH_SIZES    history sizes, in batches, at which to measure (default "10 100")
#
# Prints, per history size: the rows the join keeps, the median time of one
# batch, the time of one REFRESH MATERIALIZED VIEW over the history, and
# their ratio; then the rows the bounded join keeps and its batch's time.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

BATCH=${BENCH_BATCH:-5000}
SIZES=${BENCH_SIZES:-"10 100"}

start_bench_cluster
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }
ms() { sql -c "$1" | tail -1; }

sql >/dev/null <<SQL
CREATE EXTENSION streaming;
ALTER DATABASE postgres SET streaming.autostart = off;
SQL
sql >/dev/null <<SQL
SELECT streaming.create_source('left_ticks', 'rate', options => '{"rows_per_batch": $BATCH, "start_timestamp": "2024-01-01 00:00:00+00"}');
SELECT streaming.create_source('right_ticks', 'rate', options => '{"rows_per_batch": $BATCH, "start_timestamp": "2024-01-01 00:00:00+00"}');
SELECT streaming.create_query('pairs',
  'SELECT a.value % 100 AS k, count(*) AS n FROM left_ticks a JOIN right_ticks b ON a.value = b.value GROUP BY 1',
  output_mode => 'update');
SELECT streaming.create_query('bounded',
  \$\$SELECT a.value % 100 AS k, count(*) AS n FROM left_ticks a JOIN right_ticks b
       ON a.value = b.value AND b."timestamp" BETWEEN a."timestamp" - interval '2 seconds' AND a."timestamp" + interval '2 seconds'
    GROUP BY 1\$\$,
  output_mode => 'update', event_time => 'timestamp', watermark => '0 seconds');
CREATE TABLE left_history (value bigint);
CREATE TABLE right_history (value bigint);
CREATE MATERIALIZED VIEW pairs_mv AS
  SELECT a.value % 100 AS k, count(*) AS n FROM left_history a JOIN right_history b ON a.value = b.value GROUP BY 1;
CREATE FUNCTION timed_batch(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM streaming.run(q, 1);
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END \$\$;
CREATE FUNCTION timed_refresh() RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  REFRESH MATERIALIZED VIEW pairs_mv;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END \$\$;
SQL

add_history() {
	sql -c "INSERT INTO left_history SELECT g FROM generate_series($1, $2) g" \
		-c "INSERT INTO right_history SELECT g FROM generate_series($1, $2) g" >/dev/null
}

done_batches=0
results=()
for size in $SIZES; do
	if ((size > done_batches)); then
		log "history to $size batches of $BATCH rows per source"
		# one transaction per batch, as a worker commits them
		for ((b = done_batches; b < size; b++)); do
			echo "SELECT streaming.run('pairs', 1);"
			echo "SELECT streaming.run('bounded', 1);"
		done | sql >/dev/null
		add_history $((done_batches * BATCH)) $((size * BATCH - 1))
		# what autovacuum does in the long run, for both sides
		sql -c "VACUUM ANALYZE" >/dev/null
		done_batches=$size
	fi
	inc=()
	ref=()
	bnd=()
	for _ in 1 2 3 4 5; do
		lo=$((done_batches * BATCH))
		inc+=("$(ms "SELECT timed_batch('pairs')")")
		bnd+=("$(ms "SELECT timed_batch('bounded')")")
		add_history "$lo" $((lo + BATCH - 1))
		ref+=("$(ms "SELECT timed_refresh()")")
		done_batches=$((done_batches + 1))
	done
	# both agree on every group
	diff="$(sql -c "SELECT count(*) FROM ((SELECT k, n FROM pairs EXCEPT SELECT k, n FROM pairs_mv) UNION ALL (SELECT k, n FROM pairs_mv EXCEPT SELECT k, n FROM pairs)) d")"
	[[ "$diff" == 0 ]] || die "the incremental join and the recomputed one differ in $diff groups"
	# each row's partner is in its own batch: the bounded join finds every pair
	diff="$(sql -c "SELECT count(*) FROM ((SELECT k, n FROM bounded EXCEPT SELECT k, n FROM pairs_mv) UNION ALL (SELECT k, n FROM pairs_mv EXCEPT SELECT k, n FROM bounded)) d")"
	[[ "$diff" == 0 ]] || die "the bounded join and the recomputed one differ in $diff groups"
	kept="$(sql -c "SELECT (SELECT count(*) FROM streaming.join_1_1) + (SELECT count(*) FROM streaming.join_1_2)")"
	kept_bnd="$(sql -c "SELECT (SELECT count(*) FROM streaming.join_2_1) + (SELECT count(*) FROM streaming.join_2_2)")"
	med_inc=$(printf '%s\n' "${inc[@]}" | sort -g | sed -n 3p)
	med_ref=$(printf '%s\n' "${ref[@]}" | sort -g | sed -n 3p)
	med_bnd=$(printf '%s\n' "${bnd[@]}" | sort -g | sed -n 3p)
	results+=("$done_batches $kept $med_inc $med_ref $kept_bnd $med_bnd")
done

echo
echo "One batch of a join of two streams, $BATCH new rows per side, vs REFRESH MATERIALIZED VIEW of the join, $(nproc) cores (medians of 5)"
printf '%8s %16s %14s %18s %10s %18s %14s\n' "batches" "rows kept (both)" "batch (ms)" "recompute (ms)" "ratio" "bounded: kept" "bounded (ms)"
for r in "${results[@]}"; do
	read -r batches rows inc ref kbnd bnd <<<"$r"
	printf '%8d %16d %14.1f %18.1f %9.1fx %18d %14.1f\n' "$batches" "$rows" "$inc" "$ref" "$(echo "$ref / $inc" | bc -l)" "$kbnd" "$bnd"
done
