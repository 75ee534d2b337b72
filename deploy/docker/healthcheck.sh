#!/bin/bash
# camhub-healthcheck [host:]port [path]: exit 0 if GET http://host:port/path
# (default path /healthz, host 127.0.0.1) answers 200 within 3 seconds.
# Plain bash (/dev/tcp), for images without curl or wget.
addr=${1:?usage: camhub-healthcheck [host:]port [path]}
path=${2:-/healthz}
case $addr in *:*) host=${addr%:*} port=${addr##*:} ;; *) host=127.0.0.1 port=$addr ;; esac
host=${host:-127.0.0.1}
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
IFS=' ' read -r -t 3 proto status _ <&3 || exit 1
[ "$status" = 200 ]
