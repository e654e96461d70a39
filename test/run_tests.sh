#!/usr/bin/env bash
# `make test`: install what is missing, build (warnings are errors), install,
# then run every suite against throwaway clusters:
#   1. pg_regress (sql/*.sql vs expected/*.out) on a cluster started here;
#   2. TAP tests (test/t/*.pl), run with prove as the postgres OS user, each
#      file starting its own cluster(s) through PostgreSQL::Test::Cluster.
# The last line printed is always "N passed, N failed", where N counts
# pg_regress tests plus TAP assertions.  Exit status is non-zero if anything
# failed, if nothing ran, or if the build failed.
#
# Environment knobs:
#   TAP_TIMEOUT   seconds per TAP file before it is killed (default 1200)
#   REGRESS_TIMEOUT  seconds for the whole pg_regress run (default 1800)
#   KEEP_TMP=1    keep temporary directories (cluster dir, TAP copies) for inspection
#   TAP_TESTS     space-separated TAP files to run (default: all test/t/*.pl)

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

PASSED=0
FAILED=0
TMP_DIRS=()
CLUSTER_DIR=""

# ---------------------------------------------------------------- helpers

# The closing line; exit non-zero if anything failed or nothing ran.
finish() {
	echo
	echo "$PASSED passed, $FAILED failed"
	if ((FAILED > 0 || PASSED == 0)); then
		exit 1
	fi
	exit 0
}

# Count a failure of the harness itself (build, setup, a suite that
# could not run) and finish.
abort() {
	printf 'ERROR: %s\n' "$*" >&2
	FAILED=$((FAILED + 1))
	finish
}

cleanup() {
	if [[ -n "$CLUSTER_DIR" ]]; then
		stop_cluster "$CLUSTER_DIR"
	fi
	local d
	for d in "${TMP_DIRS[@]}"; do stop_stray_clusters "$d"; done
	if [[ "${KEEP_TMP:-0}" == 1 ]]; then
		((${#TMP_DIRS[@]} == 0)) || log "kept: ${TMP_DIRS[*]}"
	else
		for d in "${TMP_DIRS[@]}"; do rm -rf "$d"; done
	fi
	# files and directories that the regression scripts create server-side
	rm -rf /tmp/streaming_regress
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_stray_clusters DIR: immediate shutdown of any server whose data
# directory lies under DIR (a TAP file that died or timed out may leave one).
stop_stray_clusters() {
	local pidfile
	[[ -d "$1" ]] || return 0
	while IFS= read -r pidfile; do
		as_postgres "$PG_BIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate \
			-w -t 30 stop >/dev/null 2>&1 || true
	done < <(find "$1" -name postmaster.pid -type f 2>/dev/null)
}

section() { printf '\n======== %s ========\n' "$*"; }

# ---------------------------------------------------------------- prepare

section "setup"
bash "$REPO_ROOT/test/setup.sh" || abort "setup failed (packages missing?)"
[[ "$(id -u)" == 0 || "$(id -un)" == "$PG_OS_USER" ]] ||
	abort "run as root (servers run as the '$PG_OS_USER' OS user) or as $PG_OS_USER"

section "build"
build || abort "build failed"
install_ext || abort "make install failed"
build_test_tools || abort "building the test tools failed"

# ---------------------------------------------------------------- pg_regress

run_regress() {
	section "pg_regress"
	local regress
	regress="$(make -s --no-print-directory PG_CONFIG="$PG_CONFIG" \
		-f Makefile -f - <<<'print-regress: ; @echo $(REGRESS)' print-regress 2>/dev/null || true)"
	if [[ -z "${regress// /}" ]]; then
		log "no pg_regress tests (sql/*.sql); skipped"
		return 0
	fi

	CLUSTER_DIR="$(make_cluster_dir)"
	TMP_DIRS+=("$CLUSTER_DIR")
	local port
	port="$(free_port)"
	log "starting a throwaway cluster in $CLUSTER_DIR (port $port)"
	if ! start_cluster "$CLUSTER_DIR" "$port"; then
		FAILED=$((FAILED + 1))
		return 0
	fi

	# scripts create their input files under this path from the server side
	rm -rf /tmp/streaming_regress results regression.diffs regression.out \
		output_iso log

	local out="$CLUSTER_DIR/installcheck.out" rc=0
	timeout "${REGRESS_TIMEOUT:-1800}" \
		env -u TAP_TESTS make installcheck PG_CONFIG="$PG_CONFIG" \
		PGHOST="$CLUSTER_DIR" PGPORT="$port" PGUSER=postgres \
		>"$out" 2>&1 || rc=$?
	if ((rc == 0)); then
		# just the per-test lines and the summary
		sed -n '/running regression test queries/,$p' "$out"
	else
		cat "$out"
	fi

	# PG15 pg_regress: "test NAME ... ok  12 ms" (serial) or
	# "     NAME ... ok" (parallel group); anything else than ok is a failure
	# ("FAILED", "failed (ignored)", "FAILED (test process exited ...)")
	local ok bad
	ok=$(grep -cE '^(test +| +)[^ ]+ +\.\.\. +ok( |$)' "$out" || true)
	bad=$(grep -E '^(test +| +)[^ ]+ +\.\.\. ' "$out" | grep -cvE '\.\.\. +ok( |$)' || true)
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
	if ((rc != 0 && bad == 0)); then
		# pg_regress itself failed (could not connect, create the database, ...)
		warn "pg_regress exited with status $rc before reporting a failed test"
		FAILED=$((FAILED + 1))
	fi

	if ((rc != 0)); then
		local diffs
		for diffs in results/regression.diffs regression.diffs \
			output_iso/regression.diffs; do
			if [[ -s "$diffs" ]]; then
				printf '\n---- %s ----\n' "$diffs"
				cat "$diffs"
			fi
		done
		printf '\n---- last lines of the server log (%s/server.log) ----\n' "$CLUSTER_DIR"
		tail -n 60 "$CLUSTER_DIR/server.log" || true
	fi
	log "pg_regress: $ok passed, $bad failed"

	stop_cluster "$CLUSTER_DIR"
	CLUSTER_DIR=""
}

# ---------------------------------------------------------------- TAP

# PostgreSQL::Test::Cluster runs initdb itself, which refuses root, so prove
# runs as the postgres OS user on a copy of the repository (minus .git and
# build products) that postgres owns: the repository may sit where postgres
# cannot read (e.g. /root).  The copy is made after build_test_tools, so
# programs built under test/ come along.  TAP files get:
#   REPO_ROOT  the copy's root ($REPO_ROOT/test/..., $REPO_ROOT/sql/... work)
#   TESTDIR    $REPO_ROOT/test; logs go to $TESTDIR/tmp_check/log
#   PG_REGRESS, PATH with /usr/lib/postgresql/15/bin first, PERL5LIB with the
#   PostgreSQL::Test modules and $REPO_ROOT/test (for test/*.pm helpers)
run_tap() {
	section "TAP"
	local files=()
	if [[ -n "${TAP_TESTS:-}" ]]; then
		read -r -a files <<<"$TAP_TESTS"
	else
		shopt -s nullglob
		files=(test/t/*.pl)
		shopt -u nullglob
	fi
	if ((${#files[@]} == 0)); then
		log "no TAP tests (test/t/*.pl); skipped"
		return 0
	fi

	local tmp
	tmp="$(mktemp -d /tmp/streaming-tap.XXXXXX)"
	TMP_DIRS+=("$tmp")
	chmod 755 "$tmp"
	mkdir "$tmp/repo"
	tar -C "$REPO_ROOT" -cf - \
		--exclude=./.git --exclude=./results --exclude=tmp_check \
		--exclude='*.o' --exclude='*.bc' --exclude='./*.so' . |
		tar -C "$tmp/repo" -xf -
	chown -R "$PG_OS_USER:" "$tmp"

	local troot="$tmp/repo"
	local pgxs_dir="$PG_ROOT/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src"
	local tap_env=(
		env
		"PATH=$PG_BIN:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
		"PERL5LIB=$pgxs_dir/test/perl:$troot/test"
		"PG_REGRESS=$pgxs_dir/test/regress/pg_regress"
		"TESTDIR=$troot/test"
		"REPO_ROOT=$troot"
		"PG_CONFIG=$PG_CONFIG"
		"LANG=C.UTF-8"
		"HOME=$tmp"
		"TMPDIR=$tmp"   # PostgreSQL::Test socket dirs land here and get removed
	)

	local f name out rc ok bad
	for f in "${files[@]}"; do
		name="$(basename "$f" .pl)"
		out="$tmp/$name.prove.out"
		rc=0
		(cd "$troot/test" && timeout --kill-after=30 "${TAP_TIMEOUT:-1200}" \
			runuser -u "$PG_OS_USER" -- "${tap_env[@]}" \
			prove -v "t/$name.pl") >"$out" 2>&1 || rc=$?
		cat "$out"

		# top-level assertions only (subtest lines are indented);
		# TODO and skip results are not counted either way
		ok=$(grep -E '^ok [0-9]+' "$out" | grep -cviE '# *(todo|skip)' || true)
		bad=$(grep -E '^not ok [0-9]+' "$out" | grep -cviE '# *todo' || true)
		if ((rc != 0 && bad == 0)); then
			# died, bad plan, timeout, ...: the file counts as one failure
			if ((rc == 124 || rc == 137)); then
				warn "$f timed out after ${TAP_TIMEOUT:-1200} s"
			else
				warn "$f failed without a failing assertion (died or bad plan)"
			fi
			bad=1
		fi
		PASSED=$((PASSED + ok))
		FAILED=$((FAILED + bad))
		stop_stray_clusters "$troot/test/tmp_check"

		if ((rc != 0)); then
			local logf
			for logf in "$troot/test/tmp_check/log/regress_log_$name" \
				"$troot/test/tmp_check/log/${name}"_*.log; do
				[[ -f "$logf" ]] || continue
				printf '\n---- last lines of %s ----\n' "${logf#"$troot/"}"
				tail -n 50 "$logf"
			done
		fi
	done
}

run_regress
run_tap
finish
