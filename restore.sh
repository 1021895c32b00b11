#!/usr/bin/env bash
# Restore ImageHosting from a backup made by backup.sh: the database dump and the image files
# with the same timestamp. Everything now in the database and the images folder is replaced.
#
# Usage: bash restore.sh TIMESTAMP|latest [--yes] [--no-images] [--dir DIR] [--env-file FILE]
#   e.g. bash restore.sh 2026-11-26_14-05-09 --yes
# Without --yes it is a dry run: it checks the backup, says what it would replace, exits 0.
#
# Same modes as backup.sh: native when DATABASE_URL (and IMAGES_DIR) are set in the
# environment or read from --env-file, otherwise through the Compose containers `db` and `backend`.
#
# Order: both files are checked first; the image files are unpacked beside the live ones; the
# public schema is emptied and the dump restored in one transaction (all or nothing, the app
# keeps running); then image files the backup does not have are removed. Should the database
# step fail, the images folder is put back as it was. Open galleries are told to refresh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/backup-common.sh
source "${repo}/scripts/backup-common.sh"
prog="restore.sh"
# Runs first, in the restore's transaction: drop every table, view, sequence and function of
# the public schema (not the schema itself, whose owner and grants stay). The dump's own
# DROP ... IF EXISTS only covers what the backup has; a table a later version of the app
# added would survive next to the older schema_migrations, and the app's next start would
# fail to re-create it. Objects that belong to extensions are left alone.
EMPTY_SCHEMA_SQL="
SET client_min_messages = warning;
DO \$restore\$
DECLARE
    statement text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', '', true);
    FOR statement IN
        SELECT command FROM (
            SELECT 1 AS step, format('DROP %s IF EXISTS %s CASCADE',
                       CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                           WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                           ELSE 'TABLE' END,
                       c.oid::pg_catalog.regclass) AS command
            FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'public'::pg_catalog.regnamespace
              AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND NOT EXISTS (  -- extension members, and sequences their table owns
                  SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
            UNION ALL
            SELECT 2, format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::pg_catalog.regprocedure)
            FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'public'::pg_catalog.regnamespace
              AND NOT EXISTS (
                  SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
        ) AS drops
        ORDER BY step
    LOOP
        EXECUTE statement;
    END LOOP;
END
\$restore\$;
RESET client_min_messages;
"
# server/repository.py's EVENTS_CHANNEL: every backend process relays this to its open
# galleries, which then reload their page (the restore changed everything at once).
RESYNC_SQL="SELECT pg_notify('image_events', '{\"type\": \"resync\"}');"

usage() {
    echo "usage: bash restore.sh TIMESTAMP|latest [--yes] [--no-images] [--dir DIR] [--env-file FILE]" >&2
    exit 2
}

stamp=""
confirmed=0
with_images=1
dir="${repo}/backups"
while (($#)); do
    case "$1" in
        --yes) confirmed=1 ;;
        --no-images) with_images=0 ;;
        --dir)
            (($# >= 2)) || usage
            dir="$2"
            shift
            ;;
        --dir=*) dir="${1#--dir=}" ;;
        --env-file)
            (($# >= 2)) || usage
            load_env_file "$2"
            shift
            ;;
        --env-file=*) load_env_file "${1#--env-file=}" ;;
        -h | --help) usage ;;
        -*)
            echo "${prog}: unknown option: $1" >&2
            usage
            ;;
        *)
            [[ -z "${stamp}" ]] || usage
            stamp="$1"
            ;;
    esac
    shift
done
[[ -n "${stamp}" ]] || usage

# Accept a file name too: images_db_<stamp>.sql or images_<stamp>.tar.gz, with or without a path.
stamp="${stamp##*/}"
stamp="${stamp#images_db_}"
stamp="${stamp#images_}"
stamp="${stamp%.sql}"
stamp="${stamp%.tar.gz}"
if [[ "${stamp}" == latest ]]; then
    latest="$(find "${dir}" -maxdepth 1 -name 'images_db_*.sql' -printf '%f\n' 2>/dev/null |
        sort | tail -n 1)"
    [[ -n "${latest}" ]] || die "no backups in ${dir}"
    stamp="${latest#images_db_}"
    stamp="${stamp%.sql}"
fi
[[ "${stamp}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{2}-[0-9]{2}-[0-9]{2}$ ]] ||
    die "'${stamp}' is not a backup timestamp (YYYY-MM-DD_HH-MM-SS, as in the file names)"

dump="${dir}/images_db_${stamp}.sql"
archive="${dir}/images_${stamp}.tar.gz"
[[ -f "${dump}" ]] || die "no database dump ${dump}"
if ((with_images)) && [[ ! -f "${archive}" ]]; then
    die "no image archive ${archive} (pass --no-images to restore the database alone)"
fi

# Check both files before touching anything.
head -n 5 -- "${dump}" | grep -q '^-- PostgreSQL database dump' ||
    die "${dump} is not a pg_dump plain-SQL file"
tail -n 5 -- "${dump}" | grep -q '^-- PostgreSQL database dump complete' ||
    die "${dump} is incomplete (no closing line)"
if ((with_images)); then
    # Only plain files with the names the server generates: nothing that could land outside
    # the images folder (../, absolute paths, links) or replace something that is not ours.
    listing="$(tar -tvzf "${archive}")" || die "${archive} is not a readable .tar.gz"
    names="$(tar -tzf "${archive}")"
    bad="$(grep -vxE "${STORED_NAME_ERE}" <<<"${names}" | grep -v '^$' || true)"
    [[ -z "${bad}" ]] || die "${archive} holds unexpected entries: $(head -n 3 <<<"${bad}")"
    if grep -v '^$' <<<"${listing}" | grep -qv '^-'; then
        die "${archive} holds entries that are not plain files"
    fi
    count="$(grep -cxE "${IMAGE_NAME_ERE}" <<<"${names}" || true)"
fi

choose_mode "${with_images}"
if ((!confirmed)); then
    if [[ "${mode}" == native ]]; then
        target="the database $(redact "${DATABASE_URL}")"
        if ((with_images)) && in_bucket; then
            target+=" and the objects of the bucket ${S3_BUCKET:-images}"
        elif ((with_images)); then
            target+=" and the image files in ${IMAGES_DIR}"
        fi
    else
        target="the database in the '${COMPOSE_DB_CONTAINER}' container"
        ((with_images)) && target+=" and the image files in the images volume"
    fi
    log "dry run: the backup ${stamp} is complete and would replace ${target};" \
        "run again with --yes to go ahead"
    exit 0
fi
check_database_reachable

added=""
if ((with_images)); then
    log "unpacking ${count} image file(s) from ${archive}"
    added="$(images_step stage <"${archive}")" || die "unpacking the images failed (see above)"
fi

log "restoring the database from ${dump}"
if ! { echo "${EMPTY_SCHEMA_SQL}" && cat -- "${dump}" && echo "${RESYNC_SQL}"; } |
    run_psql -q -v ON_ERROR_STOP=1 --single-transaction -f - >/dev/null; then
    if [[ -n "${added}" ]]; then
        log "putting the images folder back as it was"
        images_step unstage <<<"${added}" || log "could not remove the unpacked files"
    fi
    die "the database restore failed and was rolled back; nothing was changed"
fi

if ((with_images)); then
    images_step prune <<<"${names}" || die "the database is restored, but removing image" \
        "files the backup does not have failed (see above); run \`python -m server check" \
        "--repair\` to finish"
fi
log "restored ${stamp}"
