#!/usr/bin/env bash
# Commands/s and p50/p99 over HTTP with the embedded SQLite store, with one instance on
# PostgreSQL and with two instances sharing it, and replay from each store: `minqing bench`
# run by run in turn (SQLite, PostgreSQL ×1, PostgreSQL ×2, then again), because this
# machine's speed drifts within the hour. Every PostgreSQL run gets a new empty database on a
# throwaway cluster (scripts/postgres-server), so no run reads another's events.
#
# Usage: bench/http-stores/run.sh   (builds the release binary with the postgres feature)
# Knobs (environment): REPS (rounds, default 2), CONCURRENCY (default 64), ACCEPTS, FLOWS,
# REPLAY_EVENTS, SETUPS (default "sqlite pg1 pg2"), OUT (a directory for every run's output),
# BINS (builds to compare, "name=path name=path": each setup runs on each in turn, and nothing
# is built).
# The default run takes about 12 minutes on 2 cores.
set -euo pipefail

REPS=${REPS:-2}
CONCURRENCY=${CONCURRENCY:-64}
ACCEPTS=${ACCEPTS:-6000}
FLOWS=${FLOWS:-1200}
REPLAY_EVENTS=${REPLAY_EVENTS:-300000}
SETUPS=${SETUPS:-"sqlite pg1 pg2"}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/http-stores.XXXXXX)}
mkdir -p "$OUT"
PG_DIR=$(mktemp -u /tmp/http-stores-pg.XXXXXX)

cd "$ROOT"
if [ -n "${BINS:-}" ]; then
    read -ra BUILDS <<<"$BINS"
else
    cargo build --release --locked --features postgres --bin minqing
    BUILDS=("main=${CARGO_TARGET_DIR:-$ROOT/target}/release/minqing")
fi

URL=$(scripts/postgres-server start "$PG_DIR")
trap 'scripts/postgres-server stop "$PG_DIR" >/dev/null 2>&1 || true' EXIT
PORT=$(cat "$PG_DIR/port")
BASE=${URL%/*}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "postgres: $("$(ls -d /usr/lib/postgresql/*/bin | sort -V -r | head -1)/postgres" --version)"
echo "output: $OUT"

n=0
for rep in $(seq 1 "$REPS"); do
    for setup in $SETUPS; do
        for build in "${BUILDS[@]}"; do
            name=${build%%=*}
            BIN=${build#*=}
            n=$((n + 1))
            args=(bench --accepts "$ACCEPTS" --flows "$FLOWS" --replay-events "$REPLAY_EVENTS"
                --concurrency "$CONCURRENCY")
            case $setup in
            sqlite) ;;
            pg1 | pg2)
                db="bench_${rep}_${setup}_$n"
                psql -q -h 127.0.0.1 -p "$PORT" -U minqing -d minqing -c "CREATE DATABASE $db"
                args+=(--store "$BASE/$db" --instances "${setup#pg}")
                ;;
            *) echo "unknown setup $setup" >&2; exit 2 ;;
            esac
            echo "== round $rep, $setup, $name, $(date -u +%H:%M:%S) UTC"
            "$BIN" "${args[@]}" | tee "$OUT/$rep-$setup-$name.txt"
            if [ "$setup" != sqlite ]; then
                # Case numbers handed out against the highest one (skipped numbers, if any),
                # and transactions rolled back (lost races), from the run's database.
                psql -At -h 127.0.0.1 -p "$PORT" -U minqing -d "$db" -c "
                    SELECT 'case numbers: ' || count(DISTINCT stream) || ' cases, highest '
                        || max(right(stream, 5)) FROM events
                    WHERE stream LIKE 'case-%' AND length(stream) = 18" |
                    tee -a "$OUT/$rep-$setup-$name.txt"
                psql -At -h 127.0.0.1 -p "$PORT" -U minqing -d "$db" -c "
                    SELECT 'rollbacks: ' || xact_rollback FROM pg_stat_database
                    WHERE datname = current_database()" | tee -a "$OUT/$rep-$setup-$name.txt"
            fi
        done
    done
done
