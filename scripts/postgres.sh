#!/usr/bin/env bash
# PostgreSQL for bayesopt's multi-worker studies, from Debian's packages.
#
#   bash scripts/postgres.sh install        # apt-get install postgresql (as root), if missing
#   bash scripts/postgres.sh bindir         # print the directory of initdb / pg_ctl
#   bash scripts/postgres.sh start DIR [PORT]  # initdb (once) + start a server on 127.0.0.1
#   bash scripts/postgres.sh stop DIR
#
# `start` prints the URL to give bayesopt (storage=...). The server runs as the
# `postgres` user when called as root (PostgreSQL refuses to run as root), with
# trust authentication on loopback only: a local test/development server, not a
# production set-up. The tests drive the same binaries from tests/postgres.py.
set -euo pipefail

bindir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    else
        "$@"
    fi
}

cmd=${1:-}
case "$cmd" in
    bindir)
        bindir || { echo "PostgreSQL binaries not found" >&2; exit 1; }
        ;;
    install)
        if bindir >/dev/null; then
            exit 0
        fi
        if ! command -v apt-get >/dev/null 2>&1; then
            echo "postgres.sh: no PostgreSQL binaries and no apt-get; install PostgreSQL yourself" >&2
            exit 2
        fi
        SUDO=
        if [ "$(id -u)" != 0 ]; then
            SUDO="sudo -n"
        fi
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        bindir >/dev/null
        ;;
    start)
        dir=${2:?usage: postgres.sh start DIR [PORT]}
        port=${3:-5433}
        bin=$(bindir)
        mkdir -p "$dir"
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$dir"
        fi
        if [ ! -f "$dir/data/PG_VERSION" ]; then
            as_server_user "$bin/initdb" -D "$dir/data" -U postgres --auth=trust \
                --no-locale -E UTF8 >/dev/null
        fi
        as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null
        echo "postgresql://postgres@127.0.0.1:$port/postgres"
        ;;
    stop)
        dir=${2:?usage: postgres.sh stop DIR}
        as_server_user "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
        ;;
    *)
        sed -n '2,12p' "$0"
        exit 2
        ;;
esac
