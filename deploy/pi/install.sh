#!/bin/sh
# Installs or updates camhub agents on Raspberry Pis over SSH, from a laptop
# with nothing but ssh and a camhub release (make release, or the archives).
# Run it again to update. --help says how. POSIX sh.
set -eu

usage() {
	cat <<'EOF'
Usage: deploy/pi/install.sh [options] [USER@]HOST[:ID,ID...] ...

Installs or updates the camhub agent on each HOST over SSH and starts one
agent per camera ID (the systemd unit camhub-agent@ID, settings in
/etc/camhub/agent-ID.yaml). Each Pi gets the binary for its architecture
(dpkg --print-architecture: arm64 or armhf) and the OpenCV packages it
needs. Cameras already set up on a Pi are updated too, so to update every
Pi just name them: install.sh pi@front-pi.local pi@garage-pi.local

  --dist DIR          the release to install: a directory with
                      camhub-<version>-linux-<arch>/ (make release's dist/, or
                      where you unpacked the archives). Default: this
                      checkout's dist/, or the release this script came in
  --config-dir DIR    where the cameras' settings are: agent-ID.yaml for each
                      camera and ID.join, its join token from the hub
                      (hub camera add ID >DIR/ID.join); for a hub secured by
                      hand (--auth), ID.pass and ca.pem instead (default: .)
  --packages "P ..."  more Debian packages for every Pi (e.g. gstreamer1.0-libcamera
                      for a camera module on the CSI connector)
  --replace-configs   overwrite settings that were edited on a Pi (they are
                      kept otherwise, with the new version beside them)
  -h, --help          this help

The SSH user must be root or may use sudo without a password (the user
Raspberry Pi Imager makes may). ssh options go in ~/.ssh/config, or in
CAMHUB_SSH (default "ssh"), e.g. CAMHUB_SSH="ssh -i ~/.ssh/pi_key -p 2222".
An IPv6 address is written in brackets: [fd00::5]:front.

Exit status: 0 when every agent on every host is running, 1 otherwise.
EOF
}

say() { printf '[install] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 2; }

script_dir=$(cd "$(dirname "$0")" && pwd)
dist='' config_dir=. packages='' replace=''
while [ $# -gt 0 ]; do
	case $1 in
	--dist) dist=${2:?--dist needs a directory}; shift 2 ;;
	--config-dir) config_dir=${2:?--config-dir needs a directory}; shift 2 ;;
	--packages) packages=${2?--packages needs a list}; shift 2 ;;
	--replace-configs) replace=--replace-configs; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) usage >&2; die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { usage >&2; die "name at least one host"; }
case $packages in *[!a-z0-9.+\ -]*) die "--packages: Debian package names separated by spaces" ;; esac
for spec in "$@"; do
	case $spec in -*) die "a host cannot start with '-': $spec" ;; esac
done

# The release: this checkout's dist/, or the unpacked release this script is
# part of (camhub-<version>-linux-<arch>/deploy/pi/install.sh).
top=$(cd "$script_dir/../.." && pwd)
if [ -z "$dist" ]; then
	if [ -f "$top/VERSION" ] && [ -f "$top/bin/agent" ]; then
		dist=$(dirname "$top")
	else
		dist=$top/dist
	fi
fi
[ -d "$dist" ] || die "no release in $dist: run 'make release' (or give --dist)"
dist=$(cd "$dist" && pwd)
[ -d "$config_dir" ] || die "no directory $config_dir (--config-dir)"
config_dir=$(cd "$config_dir" && pwd)
# For messages from the Pi: the directory, without characters that would need quoting.
config_dir_q=$(printf '%s' "$config_dir" | tr -c 'A-Za-z0-9_./~+-' '?')
setup=$script_dir/setup-pi.sh
[ -f "$setup" ] || die "$setup is missing"

# release_for ARCH: the one camhub-*-linux-ARCH directory in $dist.
release_for() {
	found=
	for d in "$dist"/camhub-*-linux-"$1"; do
		[ -f "$d/bin/agent" ] || continue
		[ -z "$found" ] || die "more than one release for $1 in $dist ($found, $d): keep one"
		found=$d
	done
	[ -n "$found" ] || return 1
	printf '%s\n' "$found"
}

ssh_cmd=${CAMHUB_SSH:-ssh}
tmp=$(mktemp -d)
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	for s in "$tmp"/cm-*; do
		[ -e "$s" ] || continue
		# shellcheck disable=SC2086 # CAMHUB_SSH is a command line
		$ssh_cmd -o ControlPath="$s" -O exit dummy >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

n=0 failed=0 report=
for spec in "$@"; do
	n=$((n + 1))
	# [USER@]HOST[:ID,ID...]; [IPv6]:IDS
	case $spec in
	*\]:*) host=${spec%%\]:*}] ids=${spec#*\]:} ;;
	*\]) host=$spec ids= ;;
	*:*) host=${spec%%:*} ids=${spec#*:} ;;
	*) host=$spec ids= ;;
	esac
	host=$(printf '%s' "$host" | tr -d '[]')
	case $ids in *[!A-Za-z0-9_,-]*) die "$spec: camera ids are 1-64 characters of A-Z a-z 0-9 _ -, separated by commas" ;; esac
	ids=$(printf '%s' "$ids" | tr ',' ' ')
	say "$host: connecting"
	# One SSH connection per host for all the steps.
	ssh_host() {
		# shellcheck disable=SC2086 # CAMHUB_SSH is a command line
		$ssh_cmd -o ControlMaster=auto -o ControlPath="$tmp/cm-$n" -o ControlPersist=120 \
			-o BatchMode=yes "$@"
	}
	# shellcheck disable=SC2016 # expanded on the Pi
	if ! facts=$(ssh_host "$host" 'a=$(dpkg --print-architecture 2>/dev/null || echo none); \
		c=$(ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | sed -n "s/^camhub-agent@\\(.*\\)\\.service$/\\1/p" | tr "\\n" " "); \
		echo "$a $(uname -m) $(id -u) $(mktemp -d /tmp/camhub-install.XXXXXX) $c"' </dev/null); then
		say "$host: FAILED: cannot log in with ssh (BatchMode: keys or an agent, no password prompts)"
		failed=1 report="$report
  $host: FAILED (ssh)"
		continue
	fi
	# The architecture, uid and a temporary directory; then the cameras
	# already set up there, whose settings go along too.
	read -r arch machine uid rdir present <<-EOF
		$facts
	EOF
	if [ "$arch" = none ]; then
		case $machine in
		aarch64) arch=arm64 ;; armv7l) arch=armhf ;; x86_64) arch=amd64 ;; *) arch=$machine ;;
		esac
	fi
	fail_host() {
		say "$host: FAILED: $*"
		failed=1 report="$report
  $host: FAILED ($*)"
		ssh_host "$host" "rm -rf '$rdir'" </dev/null >/dev/null 2>&1 || true
	}
	if [ "$arch" = armhf ] && [ "$machine" = armv6l ]; then
		fail_host "an ARMv6 Pi (1 or Zero): the armhf release needs ARMv7; build the agent on the Pi (deploy/pi/README.md)"
		continue
	fi
	if ! rel=$(release_for "$arch"); then
		fail_host "no release for $arch in $dist (make release builds arm64 and armhf)"
		continue
	fi
	say "$host: $arch ($machine), installing $(cat "$rel/VERSION" 2>/dev/null || basename "$rel")${ids:+ for cameras $ids}"

	# What goes to the Pi: binary, unit, setup script, package list, the
	# settings and credentials (join tokens; or passwords and ca.pem) of the
	# cameras named.
	stage=$tmp/stage-$n
	mkdir -p "$stage/settings"
	cp "$rel/bin/agent" "$stage/camhub-agent"
	cp "$script_dir/camhub-agent@.service" "$setup" "$stage/"
	if [ -f "$rel/runtime-packages" ]; then cp "$rel/runtime-packages" "$stage/"; else : >"$stage/runtime-packages"; fi
	bad=
	for id in $ids $present; do
		[ -f "$config_dir/agent-$id.yaml" ] && cp "$config_dir/agent-$id.yaml" "$stage/settings/"
		[ -f "$config_dir/$id.pass" ] && cp "$config_dir/$id.pass" "$stage/settings/"
		[ -f "$config_dir/$id.join" ] && cp "$config_dir/$id.join" "$stage/settings/"
		case $id in *[!A-Za-z0-9_-]* | "") bad="$bad $id" ;; esac
	done
	if [ -n "$bad" ]; then
		fail_host "odd camera units on the Pi:$bad"
		continue
	fi
	[ -f "$config_dir/ca.pem" ] && cp "$config_dir/ca.pem" "$stage/settings/"
	chmod -R go-rwx "$stage"

	if ! (cd "$stage" && tar -cf - .) | ssh_host "$host" "tar -C '$rdir' -xf -"; then
		fail_host "copying to $rdir failed"
		continue
	fi
	sudo=
	[ "$uid" = 0 ] || sudo="sudo -n"
	out=$tmp/out-$n
	# Run the setup on the Pi; its lines are shown with the host in front.
	rc=0
	ssh_host "$host" "$sudo sh '$rdir/setup-pi.sh' --agent '$rdir/camhub-agent' \
		--unit '$rdir/camhub-agent@.service' --packages-file '$rdir/runtime-packages' \
		--config-dir '$rdir/settings' --config-dir-name '$(uname -n):$config_dir_q' \
		--packages '$packages' $replace $ids; \
		rc=\$?; rm -rf '$rdir'; exit \$rc" </dev/null >"$out" 2>&1 || rc=$?
	sed "s/^/[$host] /" "$out" >&2
	if [ "$rc" = 0 ]; then
		report="$report
  $host: ok: $(sed -n 's/^summary: //p' "$out")"
	else
		if grep -q 'sudo: a password is required' "$out"; then
			say "$host: sudo wants a password: log in as root, or let this user sudo without one"
		fi
		failed=1 report="$report
  $host: FAILED: $(sed -n 's/^summary: //p' "$out" | grep . || echo "setup-pi.sh exited with $rc")"
	fi
done

say "done:$report"
exit "$failed"
