#!/usr/bin/env bash
# The system peers the tests run against (tests/peers): nginx (HTTP/1.1, h2, h2c, mTLS; the
# benchmarks' server), openssl (s_server: the peer that refuses client certificates with a TLS
# alert) and curl (the benchmarks' reference), from Debian. Does nothing when all three are
# there; 10-30 s when not. Run by .ci/run, and by the peer fixtures when one is missing (as root).
set -euo pipefail
need_apt=0
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt=1
command -v curl >/dev/null 2>&1 || need_apt=1
command -v openssl >/dev/null 2>&1 || need_apt=1
if [ "$need_apt" -eq 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "nginx/curl/openssl missing, not root: run 'apt-get install nginx curl openssl'" >&2
        exit 1
    fi
    # Debian's nginx package starts a system nginx on port 80 unless policy-rc.d forbids it:
    # CI wants only the nginx its tests start (and stop).
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx curl openssl >/dev/null
    if [ "$made_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
