# Sourced by scripts/test and .ci/run: makes PostgreSQL reachable and exports DATABASE_URL.
# Installs and starts a local server when none answers; uses trust auth over TCP when the server
# allows it, else a role of our own created through the local socket.

ensure_postgres() {
    if ! command -v pg_isready >/dev/null 2>&1; then
        echo "PostgreSQL not found: installing it" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    fi
    if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
        echo "PostgreSQL is down: starting it" >&2
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
    fi
    if [ -z "${DATABASE_URL:-}" ]; then
        if psql -h 127.0.0.1 -U postgres -w -c 'select 1' postgres >/dev/null 2>&1; then
            export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
        else
            # The server wants a password over TCP: create a role of our own through the local
            # socket (as the postgres OS user) and use it with its password.
            runuser -u postgres -- psql -q -c "DO \$\$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tollgate_test') THEN
                    CREATE ROLE tollgate_test LOGIN CREATEDB PASSWORD 'tollgate_test';
                END IF; END \$\$;" >/dev/null
            export DATABASE_URL="postgres://tollgate_test:tollgate_test@127.0.0.1:5432/postgres"
        fi
    fi
}
