#!/usr/bin/env bash
# `make bench`: does a query worker's memory stay flat over many batches?
# Two continuous queries run by their background workers (trigger '0',
# batches back to back) over the deterministic rate source:
#   soak_keys    update mode, SOAK_GROUPS groups keyed on value % SOAK_GROUPS
#   soak_windows append mode, 10-second windows with a 5-second watermark
#                (each batch advances event time by one second, so every
#                batch closes, emits and evicts windows)
# For each worker it prints its RssAnon (private memory, from
# /proc/<pid>/status) after the warm-up batch SOAK_WARMUP, every tenth of
# the way, and at batch SOAK_BATCHES, then the ratio end / warm-up and PASS
# if that is within 10 % of 1, FAIL otherwise.  The warm-up figure is
# taken after the worker's second look at the catalog (5 s after it
# started), whose read of pg_stat_activity (a few hundred kB per read for
# the status of every backend, freed at the end of the transaction) steps
# its heap up once by about 0.8 MB: glibc serves the first such read by
# mmap, then raises its mmap threshold and serves the next from the heap,
# which it keeps.  Flat after that.  Exits 0 either way (a
# benchmark, not a test) unless the run itself breaks (a worker restarted,
# a query failed).
#
#   SOAK_BATCHES   batches per query (default 10000)
#   SOAK_WARMUP    the batch at which the first figure is taken (default 100)
#   SOAK_ROWS      rows per batch (default 1000)
#   SOAK_GROUPS    groups of soak_keys (default 1000)

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

BATCHES=${SOAK_BATCHES:-10000}
WARMUP=${SOAK_WARMUP:-100}
ROWS=${SOAK_ROWS:-1000}
GROUPS_N=${SOAK_GROUPS:-1000}
QUERIES=(soak_keys soak_windows)

start_bench_cluster
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }

# rss_anon PID: the process's private resident memory, in kB
rss_anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }

sql >/dev/null <<EOF
CREATE EXTENSION streaming;
SELECT streaming.create_source('ticks', 'rate',
  options => '{"rows_per_batch": $ROWS, "start_timestamp": "2024-01-01 00:00:00+00",
               "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('soak_keys',
  'SELECT value % $GROUPS_N AS k, count(*) AS n, sum(value) AS total, max("timestamp") AS last
     FROM ticks GROUP BY 1',
  output_mode => 'update');
SELECT streaming.create_query('soak_windows',
  \$\$SELECT streaming.window("timestamp", '10 seconds') AS w, value % 10 AS k,
          count(*) AS n, sum(value) AS total, avg(value) AS mean
     FROM ticks GROUP BY 1, 2\$\$,
  output_mode => 'append', event_time => 'timestamp', watermark => '5 seconds');
EOF

declare -A pid start_kb end_kb start_batch end_batch next_mark
for q in "${QUERIES[@]}"; do
	next_mark[$q]=$WARMUP
done
step=$((BATCHES / 10))
t0=$(date +%s)
done_n=0
warm=0
log "running ${QUERIES[*]}: $BATCHES batches of $ROWS rows each"
while ((done_n < ${#QUERIES[@]})); do
	for q in "${QUERIES[@]}"; do
		mark=${next_mark[$q]}
		((mark > 0)) || continue
		read -r status batch wpid < <(sql -F ' ' -c \
			"SELECT state, last_batch_id, coalesce(worker_pid, 0) FROM streaming.status WHERE name = '$q'")
		# (starting: its worker is about to run its first batch)
		[[ "$status" == starting ]] && continue
		[[ "$status" == running ]] || die "$q is $status: $(sql -c "SELECT last_error FROM streaming.status WHERE name = '$q'")"
		((batch + 1 >= mark && wpid > 0)) || continue
		if [[ -z "${pid[$q]:-}" ]]; then
			settled=$(sql -c "SELECT backend_start < now() - interval '6 seconds' FROM pg_stat_activity WHERE pid = $wpid")
			[[ "$settled" == t ]] || continue
			pid[$q]=$wpid
			start_kb[$q]=$(rss_anon "$wpid")
			start_batch[$q]=$((batch + 1))
			warm=$((warm + 1))
		fi
		[[ "${pid[$q]}" == "$wpid" ]] || die "the worker of $q restarted (pid ${pid[$q]}, now $wpid)"
		kb=$(rss_anon "$wpid")
		printf '%-13s batch %6d  RssAnon %7d kB  (%d s)\n' "$q" "$((batch + 1))" "$kb" "$(($(date +%s) - t0))"
		if ((mark >= BATCHES)); then
			end_kb[$q]=$kb
			end_batch[$q]=$((batch + 1))
			next_mark[$q]=0
			sql -c "SELECT streaming.stop('$q')" >/dev/null
			done_n=$((done_n + 1))
		else
			next=$(((mark / step + 1) * step))
			((next <= BATCHES)) || next=$BATCHES
			next_mark[$q]=$next
		fi
	done
	# close to the warm-up batch while it comes; then every half second
	if ((warm < ${#QUERIES[@]})); then sleep 0.05; else sleep 0.5; fi
done
elapsed=$(($(date +%s) - t0))

# the results are right, too
keys_ok=$(sql -c "SELECT sum(n) = $ROWS::bigint * (SELECT last_batch_id + 1 FROM streaming.queries WHERE name = 'soak_keys')
                  FROM soak_keys")
[[ "$keys_ok" == t ]] || die "soak_keys does not count every row once"
# batch b is stamped b seconds on: after B batches the watermark is at B - 6
# seconds, and the windows below it are out, ten keys each
windows_ok=$(sql -c "SELECT count(*) = 10 * c.closed AND sum(n) = $ROWS::bigint * 10 * c.closed
                     FROM soak_windows,
                          (SELECT (last_batch_id + 1 - 6) / 10 AS closed FROM streaming.queries WHERE name = 'soak_windows') c
                    GROUP BY c.closed")
[[ "$windows_ok" == t ]] || die "soak_windows did not emit every closed window once"

echo
echo "Worker memory over $BATCHES batches of $ROWS rows ($(nproc) cores, $elapsed s)"
printf '%-13s %22s %22s %8s %s\n' query "RssAnon after warm-up" "RssAnon at the end" ratio verdict
for q in "${QUERIES[@]}"; do
	read -r ratio verdict < <(awk -v a="${start_kb[$q]}" -v b="${end_kb[$q]}" 'BEGIN {
		r = b / a; d = r - 1; if (d < 0) d = -d
		printf "%.3f %s\n", r, d <= 0.10 ? "PASS" : "FAIL"
	}')
	[[ "$verdict" == PASS ]] || verdict='FAIL (RssAnon not flat within 10 %)'
	printf '%-13s %7d kB (batch %5d) %7d kB (batch %5d) %8s %s\n' "$q" "${start_kb[$q]}" "${start_batch[$q]}" \
		"${end_kb[$q]}" "${end_batch[$q]}" "$ratio" "$verdict"
done
