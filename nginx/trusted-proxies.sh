#!/bin/sh
# Writes conf.d/trusted-proxies.conf from NGINX_TRUSTED_PROXIES (addresses or CIDR ranges,
# separated by spaces; empty = none): requests from those addresses are logged and rate
# limited under the client address they pass in X-Forwarded-For, not under the proxy's.
# In the nginx image it runs from /docker-entrypoint.d/ before the templates are rendered;
# scripts/local-stack runs the same file with its own conf.d folder as the argument.
set -euf
conf_dir="${1:-/etc/nginx/conf.d}"
proxies="${NGINX_TRUSTED_PROXIES:-}"
for proxy in ${proxies}; do
    # Only address characters: each value lands in the configuration as it is.
    case "${proxy}" in
        *[!0-9A-Fa-f.:/]*)
            echo "trusted-proxies.sh: NGINX_TRUSTED_PROXIES: not an address or CIDR range: ${proxy}" >&2
            exit 1
            ;;
    esac
done
{
    echo "# Written by trusted-proxies.sh from NGINX_TRUSTED_PROXIES."
    for proxy in ${proxies}; do
        echo "set_real_ip_from ${proxy};"
    done
    if [ -n "${proxies}" ]; then
        echo "real_ip_header X-Forwarded-For;"
        # The client is the last address that is not itself a trusted proxy.
        echo "real_ip_recursive on;"
    fi
} >"${conf_dir}/trusted-proxies.conf"
