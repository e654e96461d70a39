#!/usr/bin/env bash
# `make bench`: what a micro-batch costs as the history grows, side by side
# with recomputing the same aggregate from the history (a materialized view
# refreshed after the same new rows, as a periodically refreshed aggregate
# does).  The input is the deterministic rate source: every batch adds
# BENCH_BATCH rows over BENCH_GROUPS groups.
#
#   BENCH_BATCH    rows per batch (default 10000)
#   BENCH_GROUPS   groups the query keeps (default 1000)
#   BENCH_SIZES    history sizes, in batches, at which to measure (default "10 100 1000")
#
# Prints, per history size: the median time of one incremental batch, the
# time of one REFRESH MATERIALIZED VIEW over the history, and their ratio.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

BATCH=${BENCH_BATCH:-10000}
GROUPS_N=${BENCH_GROUPS:-1000}
SIZES=${BENCH_SIZES:-"10 100 1000"}

start_bench_cluster
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }
ms() { sql -c "$1" | tail -1; }

sql >/dev/null <<EOF
CREATE EXTENSION streaming;
ALTER DATABASE postgres SET streaming.autostart = off;
EOF
sql >/dev/null <<EOF
SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_batch": $BATCH}');
SELECT streaming.create_query('per_key',
  'SELECT value % $GROUPS_N AS k, count(*) AS n, sum(value) AS total FROM ticks GROUP BY 1',
  output_mode => 'update');
CREATE TABLE history (value bigint);
CREATE MATERIALIZED VIEW per_key_mv AS
  SELECT value % $GROUPS_N AS k, count(*) AS n, sum(value) AS total FROM history GROUP BY 1;
-- one batch, timed by the server: run() in its own transaction
CREATE FUNCTION timed_batch() RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM streaming.run('per_key', 1);
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END \$\$;
CREATE FUNCTION timed_refresh() RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  REFRESH MATERIALIZED VIEW per_key_mv;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END \$\$;
EOF

done_batches=0
results=()
for size in $SIZES; do
	if ((size > done_batches)); then
		log "history to $size batches of $BATCH rows"
		# one transaction per batch, as a worker commits them
		for ((b = done_batches; b < size; b++)); do
			echo "SELECT streaming.run('per_key', 1);"
		done | sql >/dev/null
		sql -c "INSERT INTO history SELECT g FROM generate_series($((done_batches * BATCH)), $((size * BATCH - 1))) g" >/dev/null
		# what autovacuum does in the long run, for both sides
		sql -c "VACUUM ANALYZE" >/dev/null
		done_batches=$size
	fi
	inc=()
	ref=()
	for _ in 1 2 3 4 5; do
		lo=$((done_batches * BATCH))
		inc+=("$(ms "SELECT timed_batch()")")
		sql -c "INSERT INTO history SELECT g FROM generate_series($lo, $((lo + BATCH - 1))) g" >/dev/null
		ref+=("$(ms "SELECT timed_refresh()")")
		done_batches=$((done_batches + 1))
	done
	# both agree on every group
	diff="$(sql -c "SELECT count(*) FROM (SELECT k, n, total FROM per_key EXCEPT SELECT k, n, total FROM per_key_mv) d")"
	[[ "$diff" == 0 ]] || die "the incremental result and the recomputed one differ in $diff groups"
	med_inc=$(printf '%s\n' "${inc[@]}" | sort -g | sed -n 3p)
	med_ref=$(printf '%s\n' "${ref[@]}" | sort -g | sed -n 3p)
	results+=("$((done_batches * BATCH)) $med_inc $med_ref")
done

echo
echo "One micro-batch of $BATCH rows over $GROUPS_N groups vs REFRESH MATERIALIZED VIEW, $(nproc) cores (medians of 5)"
printf '%14s %18s %18s %10s\n' "history rows" "incremental (ms)" "recompute (ms)" "ratio"
for r in "${results[@]}"; do
	read -r rows inc ref <<<"$r"
	printf '%14d %18.1f %18.1f %9.1fx\n' "$rows" "$inc" "$ref" "$(echo "$ref / $inc" | bc -l)"
done
