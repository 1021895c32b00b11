#!/usr/bin/env bash
# Back up ImageHosting: a plain-SQL dump of the database and a .tar.gz of the image files,
# both named with the same date and time:
#
#   backups/images_db_YYYY-MM-DD_HH-MM-SS.sql     (pg_dump --clean --if-exists)
#   backups/images_YYYY-MM-DD_HH-MM-SS.tar.gz     (unless --no-images)
#
# Usage: bash backup.sh [--no-images] [--dir DIR] [--env-file FILE]
#
# Native mode, when DATABASE_URL is set in the environment (IMAGES_DIR too, unless
# --no-images), or read from --env-file (e.g. .data/stack.env, written by scripts/local-stack): the local pg_dump (the newest one installed) and tar. Otherwise Compose mode:
# pg_dump runs inside the `db` container, tar inside the `backend` container.
# .env is not read: it is shared with Compose, which sets DATABASE_URL for the containers.
#
# Each file is written under a hidden temporary name and renamed only when complete, so a
# final name always holds a whole backup. Files are 0600 and the default folder 0700: they
# hold the cookie secret and owner hashes. Prints the files it wrote, one per line.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/backup-common.sh
source "${repo}/scripts/backup-common.sh"
prog="backup.sh"

usage() {
    echo "usage: bash backup.sh [--no-images] [--dir DIR] [--env-file FILE]" >&2
    exit 2
}

with_images=1
dir="${repo}/backups"
while (($#)); do
    case "$1" in
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
        *)
            echo "${prog}: unknown argument: $1" >&2
            usage
            ;;
    esac
    shift
done

# Backups hold the cookie secret and every owner's hash: readable by this account alone.
umask 077
choose_mode "${with_images}"
if [[ ! -d "${dir}" || "${dir}" == "${repo}/backups" ]]; then
    mkdir -p -- "${dir}" || die "cannot create the backup folder ${dir}"
    # The default folder (and one made here) is private; a folder you name keeps its mode.
    if [[ -O "${dir}" ]]; then
        chmod 0700 -- "${dir}"
    fi
fi
[[ -w "${dir}" ]] || die "the backup folder ${dir} is not writable"
dir="$(cd "${dir}" && pwd)"

check_database_reachable

# One timestamp names both files; never reuse one that is taken (two runs in one second).
while :; do
    stamp="$(date +%Y-%m-%d_%H-%M-%S)"
    dump="${dir}/images_db_${stamp}.sql"
    archive="${dir}/images_${stamp}.tar.gz"
    [[ -e "${dump}" || -e "${archive}" ]] || break
    sleep 1
done
dump_tmp="${dir}/.images_db_${stamp}.sql.partial"
archive_tmp="${dir}/.images_${stamp}.tar.gz.partial"
temp_files=("${dump_tmp}" "${archive_tmp}")
cleanup() {
    local status=$?
    rm -f -- "${temp_files[@]}"
    if ((status != 0)); then
        echo "${prog}: failed; no backup was written" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Fail early when the folder obviously cannot hold the backup (the database's size is an
# upper bound for a plain dump; image files barely compress).
need_kb="$(database_size_kb)"
if ((with_images)); then
    need_kb=$((need_kb + $(images_size_kb)))
fi
free_kb="$(df -Pk -- "${dir}" | awk 'NR == 2 { print $4 }')"
if ((free_kb < need_kb)); then
    die "not enough space in ${dir}: about $((need_kb / 1024 + 1)) MB needed," \
        "$((free_kb / 1024)) MB free"
fi

# The database first, then the files: an upload landing in between is only an extra file in
# the archive, never a row without its file. (An image deleted in between does come back as a
# row without its file.) After a restore, `python -m server check --repair` settles both.
log "dumping the database to ${dump}"
dump_database >"${dump_tmp}" || die "pg_dump failed (see above; is the disk full?)"
# A dump cut short (a connection lost mid-way) lacks pg_dump's closing line.
tail -n 5 -- "${dump_tmp}" | grep -q '^-- PostgreSQL database dump complete' \
    || die "the dump is incomplete"

if ((with_images)); then
    log "archiving the image files to ${archive}"
    archive_images >"${archive_tmp}" || die "archiving the images failed (see above)"
    gzip -t -- "${archive_tmp}" || die "the image archive is corrupt"
fi

# Make the data durable before the names say the backup exists; the archive gets its final
# name first, so a dump under its final name always has its images beside it.
written=("${dump_tmp}")
if ((with_images)); then
    written+=("${archive_tmp}")
fi
sync -- "${written[@]}"
if ((with_images)); then
    mv -T -- "${archive_tmp}" "${archive}"
fi
mv -T -- "${dump_tmp}" "${dump}"
sync -- "${dir}"

echo "${dump}"
if ((with_images)); then
    echo "${archive}"
fi
log "backup complete: ${stamp}"
