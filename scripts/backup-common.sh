# Shared by backup.sh and restore.sh (sourced, not run): how to reach the database and the
# images folder, natively or through the Compose containers. Callers set `repo` and `prog`.
# shellcheck shell=bash

# Fixed by docker-compose.yml: the database container, its database and superuser.
COMPOSE_DB_CONTAINER="db"
COMPOSE_DB_NAME="images_db"
COMPOSE_DB_USER="postgres"
COMPOSE_IMAGES_DIR="/images"
# The names server/storage.py gives stored files, relative to the images folder: images, and
# their thumbnails in thumbs/ when there are any. Nothing else in the folder is backed up.
IMAGE_NAME_ERE='[0-9a-f]{32}\.(jpg|png|gif)'
THUMB_NAME_ERE='thumbs/[0-9a-f]{32}-[0-9]+\.webp'
STORED_NAME_ERE="(${IMAGE_NAME_ERE}|${THUMB_NAME_ERE})"

log() { echo "${prog}: $*" >&2; }
die() {
    echo "${prog}: error: $*" >&2
    exit 1
}

# A URL fit for messages: the password, if any, replaced by ***.
redact() { sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#; s#(password=)[^ ]*#\1***#' <<<"$1"; }

major_version() { "$1" --version 2>/dev/null | sed -nE '1s/^[^0-9]*([0-9]+).*/\1/p'; }

# The newest PostgreSQL client program `name` on this machine: $PG_BIN_DIR, PATH, and the
# versioned folders Debian/Ubuntu and RHEL install side by side. A newer pg_dump reads older
# servers; an older one refuses newer servers.
newest_client() {
    local name="$1" best="" best_major=-1 candidate major
    for candidate in ${PG_BIN_DIR:+"${PG_BIN_DIR}/${name}"} "$(command -v "${name}" || true)" \
        /usr/lib/postgresql/*/bin/"${name}" /usr/pgsql-*/bin/"${name}"; do
        [[ -n "${candidate}" && -x "${candidate}" ]] || continue
        major="$(major_version "${candidate}")"
        [[ -n "${major}" ]] || continue
        if ((major > best_major)); then
            best="${candidate}"
            best_major="${major}"
        fi
    done
    echo "${best}"
}

# --env-file FILE: export DATABASE_URL, IMAGES_DIR and the storage settings from a KEY=value file, over the
# environment; e.g. the stack.env scripts/local-stack writes, whose database port changes at
# each start. Other lines are ignored; one pair of surrounding quotes is stripped.
load_env_file() {
    local file="$1" line key value
    [[ -f "${file}" ]] || die "--env-file: ${file} is not a file"
    while IFS= read -r line || [[ -n "${line}" ]]; do
        [[ "${line}" =~ ^[[:space:]]*(export[[:space:]]+)?(DATABASE_URL|IMAGES_DIR|STORAGE|S3_[A-Z_]+)=(.*)$ ]] ||
            continue
        key="${BASH_REMATCH[2]}"
        value="${BASH_REMATCH[3]}"
        if [[ "${value}" =~ ^\'(.*)\'$ || "${value}" =~ ^\"(.*)\"$ ]]; then
            value="${BASH_REMATCH[1]}"
        fi
        export "${key}=${value}"
    done <"${file}"
}

# Sets `mode` (native or compose) and what that mode needs; exits with a clear message when
# neither is possible.
choose_mode() {
    local with_images="$1"
    if [[ -n "${DATABASE_URL:-}" ]]; then
        mode="native"
        if ((with_images)) && ! in_bucket; then
            [[ -n "${IMAGES_DIR:-}" ]] || die "DATABASE_URL is set but IMAGES_DIR is not: set" \
                "both (native mode), pass --no-images for the database alone, or unset" \
                "DATABASE_URL to use the Compose containers"
            [[ -d "${IMAGES_DIR}" ]] || die "IMAGES_DIR=${IMAGES_DIR} is not a folder"
        fi
        PG_DUMP="${PG_DUMP:-$(newest_client pg_dump)}"
        PSQL="${PSQL:-$(newest_client psql)}"
        [[ -x "${PG_DUMP}" && -x "${PSQL}" ]] || die "pg_dump and psql not found: install the" \
            "PostgreSQL client (Debian/Ubuntu: postgresql-client), or set PG_DUMP and PSQL"
        export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"
        return
    fi
    mode="compose"
    command -v docker >/dev/null || die "no DATABASE_URL (native mode) and no docker command" \
        "(Compose mode): set DATABASE_URL and IMAGES_DIR, or install Docker"
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose >/dev/null; then
        compose=(docker-compose)
    else
        die "neither \`docker compose\` nor docker-compose is installed"
    fi
    compose+=(--project-directory "${repo}" -f "${repo}/docker-compose.yml")
}

# Runs psql (native: against DATABASE_URL; compose: inside the db container) with any extra
# arguments; SQL may come on stdin.
run_psql() {
    if [[ "${mode}" == native ]]; then
        "${PSQL}" -X -d "${DATABASE_URL}" "$@"
    else
        docker exec -i "${COMPOSE_DB_CONTAINER}" \
            psql -X -U "${COMPOSE_DB_USER}" -d "${COMPOSE_DB_NAME}" "$@"
    fi
}

check_database_reachable() {
    local output server_major dump_major
    if [[ "${mode}" == compose ]]; then
        [[ "$(docker inspect -f '{{.State.Running}}' "${COMPOSE_DB_CONTAINER}" 2>/dev/null)" == true ]] \
            || die "the '${COMPOSE_DB_CONTAINER}' container is not running: start the stack" \
                "(docker compose up -d), or set DATABASE_URL and IMAGES_DIR for a native run"
        docker exec "${COMPOSE_DB_CONTAINER}" pg_isready -q -U "${COMPOSE_DB_USER}" \
            -d "${COMPOSE_DB_NAME}" || die "PostgreSQL in the '${COMPOSE_DB_CONTAINER}'" \
            "container is not accepting connections yet; try again in a moment"
        if ((with_images)) && [[ -z "$("${compose[@]}" ps -q backend 2>/dev/null)" ]]; then
            die "the backend container is not running (it holds the images volume): start" \
                "the stack, or pass --no-images"
        fi
        return
    fi
    if ! output="$(run_psql -A -t -q -c 'SHOW server_version_num' 2>&1)"; then
        die "cannot reach the database at $(redact "${DATABASE_URL}"): ${output}"
    fi
    server_major=$((output / 10000))
    dump_major="$(major_version "${PG_DUMP}")"
    ((server_major <= dump_major)) || die "the server runs PostgreSQL ${server_major} but the" \
        "newest pg_dump here (${PG_DUMP}) is ${dump_major}: install the PostgreSQL" \
        "${server_major} client, or set PG_DUMP"
}

database_size_kb() { run_psql -A -t -q -c 'SELECT pg_database_size(current_database()) / 1024'; }

# A plain-SQL dump that drops what it creates first, so it restores onto a database the app
# has already initialised as well as onto an empty one.
dump_database() {
    if [[ "${mode}" == native ]]; then
        "${PG_DUMP}" --dbname="${DATABASE_URL}" --clean --if-exists
    else
        docker exec "${COMPOSE_DB_CONTAINER}" pg_dump -U "${COMPOSE_DB_USER}" --clean --if-exists \
            "${COMPOSE_DB_NAME}"
    fi
}

# The steps on the images folder, in POSIX sh so that one text runs on this machine (native)
# or inside the backend container (Compose): `sh -c "$IMAGES_SCRIPT" images ACTION DIR`.
# Names are relative to the folder (`<hex>.png`, `thumbs/<hex>-320.webp`).
#   size      print the folder's size in kB
#   archive   write a .tar.gz of the stored files to stdout (temp files and strays left out)
#   stage     unpack the archive on stdin beside the live files and move them in; print the
#             names that were not there before (for `unstage`)
#   unstage   remove the names on stdin (undo `stage` when the database restore failed)
#   prune     remove stored files whose names are not on stdin and that were there before
#             `stage` (an upload that lands during the restore keeps its file); temp files
#             are left to `python -m server check --repair`, which knows which are stale
# shellcheck disable=SC2016 # expanded by the inner shell
IMAGES_SCRIPT='
set -eu
action=$1
cd "$2"
stored() {
    find . -maxdepth 1 -regextype posix-extended -type f -regex "\./'"${IMAGE_NAME_ERE}"'" \
        "$@" -printf "%P\n"
    if [ -d thumbs ]; then
        find thumbs -maxdepth 1 -regextype posix-extended -type f \
            -regex "'"${THUMB_NAME_ERE}"'" "$@" -printf "%p\n"
    fi
}
case $action in
size)
    du -sk . | cut -f1 ;;
archive)
    stored | tr "\n" "\0" | tar --null --no-recursion -T - -czf - ;;
stage)
    touch .restore-started
    rm -rf .restore-staging
    mkdir .restore-staging
    tar -xzf - -C .restore-staging --no-same-owner --no-same-permissions
    chmod -R u=rwX,go=rX .restore-staging
    # Builtins only per file, and one mv per batch: a restore of 100,000 files takes seconds.
    (cd .restore-staging && find . -type f -printf "%P\n") | while IFS= read -r name; do
        [ -e "$name" ] || echo "$name"
    done
    if [ -d .restore-staging/thumbs ]; then
        [ -d thumbs ] || { mkdir thumbs && chmod 0755 thumbs; }
        find .restore-staging/thumbs -maxdepth 1 -type f -exec mv -f -t thumbs {} +
    fi
    find .restore-staging -maxdepth 1 -type f -exec mv -f -t . {} +
    rm -rf .restore-staging ;;
unstage)
    tr "\n" "\0" | xargs -0 -r rm -f --
    rm -f .restore-started ;;
prune)
    cat >.restore-keep
    stored ! -newer .restore-started | grep -vxF -f .restore-keep | tr "\n" "\0" |
        xargs -0 -r rm -f --
    rm -f .restore-keep .restore-started ;;
esac
'

# STORAGE=s3 (native mode): the images are objects of the bucket. The app's own
# `migrate-storage` copies them into a private staging folder, and back, so an archive has the
# same layout whichever store it came from (and restores into either).
in_bucket() { [[ "${STORAGE:-local}" == s3 && -n "${DATABASE_URL:-}" ]]; }

run_server() {
    local python="${repo}/.venv/bin/python"
    [[ -x "${python}" ]] || python="$(command -v python3)"
    (cd "${repo}" && "${python}" -m server "$@")
}

# In a subshell: its EXIT trap removes the staging folder however the step ends. A restore
# copies the archive's objects in before the database step; should that fail, they stay in
# the bucket as objects without rows, which `check --repair` removes.
bucket_step() (
    local action="$1" staging
    staging="$(mktemp -d)"
    # shellcheck disable=SC2064 # the folder is known now
    trap "rm -rf -- '${staging}'" EXIT
    case "${action}" in
    size) echo 0 ;; # unknown before copying; the archive is checked as it is written
    archive)
        IMAGES_DIR="${staging}" run_server migrate-storage --to local >&2 || return 1
        sh -c "${IMAGES_SCRIPT}" images archive "${staging}"
        ;;
    stage)
        tar -xzf - -C "${staging}" --no-same-owner --no-same-permissions
        IMAGES_DIR="${staging}" run_server migrate-storage --to s3 >&2
        ;;
    unstage) cat >/dev/null ;;
    prune)
        cat >/dev/null
        log "objects the backup does not have stay in the bucket until" \
            "\`python -m server check --repair\` removes them"
        ;;
    esac
)

images_step() {
    local action="$1"
    shift
    if in_bucket; then
        bucket_step "${action}"
    elif [[ "${mode}" == native ]]; then
        sh -c "${IMAGES_SCRIPT}" images "${action}" "${IMAGES_DIR}" "$@"
    else
        # With docker-compose.s3.yml the images volume is empty: an archive of it would look
        # like a backup and hold nothing.
        if [[ "$("${compose[@]}" exec -T backend printenv STORAGE 2>/dev/null)" == s3 ]]; then
            die "the Compose stack keeps its images in a bucket (docker-compose.s3.yml):" \
                "back the bucket up in native mode (README \"Backups\"), or pass --no-images"
        fi
        "${compose[@]}" exec -T backend sh -c "${IMAGES_SCRIPT}" images "${action}" \
            "${COMPOSE_IMAGES_DIR}" "$@"
    fi
}

images_size_kb() { images_step size; }
archive_images() { images_step archive; }
