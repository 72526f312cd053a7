#!/usr/bin/env bash
# Durable appends per second under two ways of giving appended events their global positions
# in PostgreSQL, measured with pgbench on a throwaway cluster:
#
#   A "counter"  one-row table `head`; each append runs UPDATE head ... RETURNING position
#                (dense positions in commit order; the row lock is held across the commit).
#   B "xmin"     position = (transaction id << 12) + i; no shared row; readers stop below the
#                oldest running transaction (pg_snapshot_xmin of the current snapshot).
#
# Each append is one transaction: a new stream, two events of ~300 bytes, pg_notify, commit.
# The `_nonotify` variants leave out pg_notify (NOTIFY serialises commits on its own).
# Schemes alternate run by run (A B ... A B ...) because the machine's speed drifts.
# Then the reader query of each scheme is timed on 200,000 events, and the disk's fsync
# rate (pg_test_fsync) is printed so the append rates can be read against it.
#
# Usage: bench/pg-positions/run.sh        (as root the server runs as the `postgres` user)
# Knobs (environment): PGBIN, CLIENTS, REPS, DURATION, READ_DURATION, FSYNC_SECONDS, SCHEMES,
# LOG_DIR (keep every pgbench output there). The default run takes about 13 minutes.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
CLIENTS=${CLIENTS:-"1 4 8 16"}
REPS=${REPS:-2}                  # runs of each (scheme, clients)
DURATION=${DURATION:-20}         # seconds per append run
READ_DURATION=${READ_DURATION:-15}
FSYNC_SECONDS=${FSYNC_SECONDS:-2}  # pg_test_fsync -s
SCHEMES=${SCHEMES:-"counter xmin xmin_nonotify counter_nonotify"}
LOG_DIR=${LOG_DIR:-}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d /tmp/pg-positions.XXXXXX)
PGDATA_DIR="$WORK/data"
RESULTS="$WORK/results.tsv"      # kind, scheme, clients, rep, tps, transactions, wal_syncs, latency ms
mkdir -p "$WORK/logs"
: >"$RESULTS"

# PostgreSQL refuses to run as root: run the server tools as `postgres` when we are root.
if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$WORK"
    as_server() { runuser -u postgres -- "$@"; }
else
    as_server() { "$@"; }
fi

# Stop the server (if it was started) and remove the cluster, however the script ends.
cleanup() {
    local status=$?
    if [[ -f "$PGDATA_DIR/postmaster.pid" ]]; then
        as_server "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [[ -n "$LOG_DIR" && -d "$WORK/logs" ]]; then
        mkdir -p "$LOG_DIR" && cp "$WORK"/logs/* "$LOG_DIR"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on 127.0.0.1: the first one nothing answers on.
PORT=
for candidate in $(seq 54330 54430); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        PORT=$candidate
        break
    fi
done
[[ -n "$PORT" ]] || { echo "no free port in 54330-54430" >&2; exit 1; }

CONN=(-h 127.0.0.1 -p "$PORT" -U postgres)
sql() { "$PGBIN/psql" "${CONN[@]}" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
DATA=$(<"$HERE/payload.json")
METADATA=$(<"$HERE/metadata.json")

echo "# pg-positions: $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(nproc) vCPU, Linux $(uname -r)"

# --- 1. The disk's fsync rate, before the server runs (8 kB writes, as the WAL does). --------
echo "## pg_test_fsync -s $FSYNC_SECONDS on $WORK"
as_server "$PGBIN/pg_test_fsync" -s "$FSYNC_SECONDS" -f "$WORK/fsync.test" >"$WORK/logs/pg_test_fsync.txt" 2>&1
sed -n '/one 8kB write/,/^$/p' "$WORK/logs/pg_test_fsync.txt"
FDATASYNC=$(awk '/fdatasync/ && /ops\/sec/ { printf "%.0f", $2; exit }' "$WORK/logs/pg_test_fsync.txt")
rm -f "$WORK/fsync.test"

# --- 2. A throwaway cluster with default durability (fsync=on, synchronous_commit=on). -----
as_server "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 >"$WORK/logs/initdb.txt"
as_server "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=''" \
    start >/dev/null
echo "## $(sql -c 'SELECT version()' | cut -d, -f1) on port $PORT;" \
     "fsync=$(sql -c 'SHOW fsync'), synchronous_commit=$(sql -c 'SHOW synchronous_commit')," \
     "wal_sync_method=$(sql -c 'SHOW wal_sync_method'), commit_delay=$(sql -c 'SHOW commit_delay')"
sql -f "$HERE/schema.sql"

# Pulls "name = value" numbers out of a pgbench log.
tps_of() { awk '/^tps = / { print $3 }' "$1"; }
xacts_of() { awk '/number of transactions actually processed/ { print $NF }' "$1"; }
latency_of() { awk '/^latency average/ { print $4 }' "$1"; }

# One append run: empty tables, fresh counter, checkpoint (every run starts with the same
# full-page writes ahead of it), WAL statistics reset, then pgbench.
append_run() {
    local scheme=$1 clients=$2 rep=$3
    local log="$WORK/logs/append_${scheme}_c${clients}_r${rep}.txt"
    sql -c 'TRUNCATE events, streams, head' -c 'INSERT INTO head VALUES (0)' \
        -c 'CHECKPOINT' -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
    if ! "$PGBIN/pgbench" "${CONN[@]}" -n -M prepared -c "$clients" -j $((clients < 2 ? 1 : 2)) \
            -T "$DURATION" -D data="$DATA" -D metadata="$METADATA" \
            -f "$HERE/append_$scheme.sql" postgres >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    local syncs
    sleep 1   # the backends report their WAL statistics as they exit
    syncs=$(sql -c 'SELECT wal_sync FROM pg_stat_wal')
    printf 'append\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scheme" "$clients" "$rep" \
        "$(tps_of "$log")" "$(xacts_of "$log")" "$syncs" "$(latency_of "$log")" >>"$RESULTS"
    printf '  %-17s c=%-2s run %s: %8.0f appends/s, %5.2f commits per WAL flush\n' \
        "$scheme" "$clients" "$rep" "$(tps_of "$log")" \
        "$(awk -v x="$(xacts_of "$log")" -v s="$syncs" 'BEGIN { print (s > 0 ? x / s : 0) }')"
}

# --- 3. The alternating append series. ------------------------------------------------------
echo "## appends: ${DURATION} s per run, schemes alternating: $SCHEMES"
for clients in $CLIENTS; do
    for rep in $(seq 1 "$REPS"); do
        for scheme in $SCHEMES; do
            append_run "$scheme" "$clients" "$rep"
        done
    done
done

# --- 4. The reader query of each scheme on 200,000 events laid out as scheme B does. ---------
echo "## readers: loading 200,000 events"
sql -v data="$DATA" -v metadata="$METADATA" -f "$HERE/load_events.sql"
sql -c 'VACUUM ANALYZE events' -c 'CHECKPOINT'
# Page starts between the first position and the 512th from the end: every page is full.
LO=$(sql -c 'SELECT min(position) - 1 FROM events')
HI=$(sql -c 'SELECT position FROM events ORDER BY position DESC OFFSET 512 LIMIT 1')
echo "  events: $(sql -c 'SELECT count(*) FROM events'); page starts in [$LO, $HI]"
echo "  plan of the scheme B page (the horizon is an index bound, computed once per query):"
sql -c "EXPLAIN (COSTS OFF) SELECT * FROM events WHERE position > $LO
        AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 12)
        ORDER BY position LIMIT 512" | sed 's/^/    /'
for reader in counter xmin; do      # check: a page from the last start is still full
    query=$(sed -n '/^SELECT/,$p' "$HERE/read_$reader.sql" | sed "s/:from/$HI/")
    rows=$(sql -c "$query" | wc -l)
    [[ $rows -eq 512 ]] || { echo "read_$reader.sql returned $rows rows, not 512" >&2; exit 1; }
done
for rep in $(seq 1 "$REPS"); do
    for reader in counter xmin; do
        log="$WORK/logs/read_${reader}_r${rep}.txt"
        if ! "$PGBIN/pgbench" "${CONN[@]}" -n -M prepared -c 1 -j 1 -T "$READ_DURATION" \
                -D lo="$LO" -D hi="$HI" -f "$HERE/read_$reader.sql" postgres >"$log" 2>&1; then
            cat "$log" >&2
            exit 1
        fi
        printf 'read\t%s\t1\t%s\t%s\t%s\t0\t%s\n' "$reader" "$rep" \
            "$(tps_of "$log")" "$(xacts_of "$log")" "$(latency_of "$log")" >>"$RESULTS"
        printf '  read_%-7s run %s: %8.0f pages/s (%s ms per page)\n' \
            "$reader" "$rep" "$(tps_of "$log")" "$(latency_of "$log")"
    done
done

# --- 5. The results as markdown tables. -------------------------------------------------------
echo
echo "## Results ($(date -u '+%Y-%m-%d %H:%M') UTC)"
echo
echo "Disk under /tmp: fdatasync of one 8 kB write, ${FDATASYNC} ops/s (pg_test_fsync -s $FSYNC_SECONDS)."
echo
awk -F'\t' -v schemes="$SCHEMES" -v clients="$CLIENTS" '
    function fmt(x,    s, r) {            # 1234.5 -> 1,235
        s = sprintf("%.0f", x); r = ""
        while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
        return s r
    }
    $1 == "append" {
        k = $2 SUBSEP $3
        runs[k] = (n[k] > 0 ? runs[k] "; " : "") fmt($5)
        sum[k] += $5; n[k]++; xacts[k] += $6; syncs[k] += $7
    }
    $1 == "read" {
        reads[$2] = (rn[$2] > 0 ? reads[$2] "; " : "") fmt($5)
        rlat[$2] = (rn[$2] > 0 ? rlat[$2] "; " : "") $8
        rsum[$2] += $5; rn[$2]++
    }
    END {
        ns = split(schemes, s, " "); nc = split(clients, c, " ")
        print "Durable appends/s (each run; mean), pgbench -M prepared, -T per run as above:"
        print ""
        line = "| clients |"; sep = "|---|"
        for (i = 1; i <= ns; i++) { line = line " " s[i] " |"; sep = sep "---|" }
        print line; print sep
        for (j = 1; j <= nc; j++) {
            line = "| " c[j] " |"
            for (i = 1; i <= ns; i++) {
                k = s[i] SUBSEP c[j]
                line = line " " runs[k] " (**" fmt(sum[k] / n[k]) "**) |"
            }
            print line
        }
        print ""
        print "Commits per WAL flush (transactions / pg_stat_wal.wal_sync, all runs):"
        print ""
        line = "| clients |"; sep = "|---|"
        for (i = 1; i <= ns; i++) { line = line " " s[i] " |"; sep = sep "---|" }
        print line; print sep
        for (j = 1; j <= nc; j++) {
            line = "| " c[j] " |"
            for (i = 1; i <= ns; i++) {
                k = s[i] SUBSEP c[j]
                line = line " " sprintf("%.2f", syncs[k] > 0 ? xacts[k] / syncs[k] : 0) " |"
            }
            print line
        }
        print ""
        print "Reader, one page of 512 events on 200,000 (pgbench -c 1, pages/s; latency ms):"
        print ""
        print "| query | pages/s (each run; mean) | latency ms |"
        print "|---|---|---|"
        print "| A: `position > $1` | " reads["counter"] " (**" fmt(rsum["counter"] / rn["counter"]) "**) | " rlat["counter"] " |"
        print "| B: `position > $1 AND position < xmin << 12` | " reads["xmin"] " (**" fmt(rsum["xmin"] / rn["xmin"]) "**) | " rlat["xmin"] " |"
    }' "$RESULTS"
