#!/usr/bin/env bash
# `make bench`: the fixed cost of a micro-batch - what a batch of a few
# rows costs when one session (as one worker) runs many of them, one
# transaction each.  Two queries over the deterministic rate source: an
# aggregate (update mode: the batch statement only) and a windowed one
# (append mode with a watermark: the batch and the close statement).
#
#   OVH_BATCHES  batches per query (default 500)
#   OVH_ROWS     rows per batch (default 10)
#
# Prints, per query: the mean wall-clock time of one run(name, 1) over all
# batches in one session, the median add_batch time (the batch and close
# statements) and the median time of the whole batch (trigger_execution)
# from streaming.progress.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

BATCHES=${OVH_BATCHES:-500}
ROWS=${OVH_ROWS:-10}

start_bench_cluster
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }

sql >/dev/null <<EOF
CREATE EXTENSION streaming;
ALTER DATABASE postgres SET streaming.autostart = off;
EOF
sql >/dev/null <<EOF
SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_batch": $ROWS}');
SELECT streaming.create_query('per_key',
  'SELECT value % 7 AS k, count(*) AS n, sum(value) AS total FROM ticks GROUP BY 1',
  output_mode => 'update', start => false);
SELECT streaming.create_query('per_10s',
  \$\$SELECT streaming.window("timestamp", '10 seconds') AS w, count(*) AS n, sum(value) AS total
      FROM ticks GROUP BY 1\$\$,
  output_mode => 'append', event_time => 'timestamp', watermark => '5 seconds', start => false);
EOF

results=()
for q in per_key per_10s; do
	start=$(date +%s%N)
	for ((b = 0; b < BATCHES; b++)); do
		echo "SELECT streaming.run('$q', 1);"
	done | sql >/dev/null
	end=$(date +%s%N)
	mean=$(echo "($end - $start) / 1000000 / $BATCHES" | bc -l)
	med=$(sql -c "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY (duration_ms->>'add_batch')::float8)
	              FROM streaming.progress WHERE query = '$q'")
	trig=$(sql -c "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY (duration_ms->>'trigger_execution')::float8)
	              FROM streaming.progress WHERE query = '$q'")
	results+=("$q $mean $med $trig")
done

echo
echo "Batches of $ROWS rows, $BATCHES per query, one session, one transaction each, $(nproc) cores"
printf '%10s %22s %22s %22s\n' "query" "run(name, 1) mean (ms)" "add_batch median (ms)" "batch median (ms)"
for r in "${results[@]}"; do
	read -r q mean med trig <<<"$r"
	printf '%10s %22.3f %22.3f %22.3f\n' "$q" "$mean" "$med" "$trig"
done
