#!/bin/sh
# Installs or updates the camhub agent on this machine: a Raspberry Pi, or any
# Debian-like system with systemd. deploy/pi/install.sh runs it on each Pi
# over SSH; after building on the Pi itself, run it there yourself. --help
# says how. POSIX sh: it runs on a bare Raspberry Pi OS.
set -eu

usage() {
	cat <<'EOF'
Usage: sudo setup-pi.sh --agent FILE [options] [ID...]

Installs the camhub agent FILE as /usr/local/bin/camhub-agent with the systemd
unit camhub-agent@.service, creates the system user camhub (in group video),
installs the Debian packages the agent needs, and for each camera ID installs
/etc/camhub/agent-ID.yaml and enables and starts camhub-agent@ID. The cameras
already set up here are updated too; without IDs, only they are. Running it
again is an update: what is already right is left alone, and an agent is
restarted only if its binary, unit, settings or credentials changed (or it
was not running).

  --agent FILE          the agent binary built for this machine
  --unit FILE           the unit file (default: camhub-agent@.service beside this script)
  --config-dir DIR      where agent-ID.yaml, ID.join (or ID.pass and ca.pem) are taken from (default .)
  --packages-file FILE  Debian packages the agent needs, one a line (a release's runtime-packages)
  --packages "P ..."    more Debian packages to install (e.g. gstreamer1.0-libcamera)
  --replace-configs     overwrite /etc/camhub/agent-ID.yaml even where it was edited here
  --config-dir-name N   what to call DIR in messages (install.sh: the laptop's directory)
  -h, --help            this help

Settings: /etc/camhub/agent-ID.yaml is installed from DIR/agent-ID.yaml if it
is missing, and updated when DIR's copy changes, unless it was edited here
since: then it is kept, and DIR's version is left beside it as
agent-ID.yaml.camhub-new (like dpkg's configuration files).
Credentials: DIR/ID.join, the camera's join token (hub camera add ID), becomes
/var/lib/camhub-agent/agent-ID.join (mode 0600, user camhub), where the agent
finds it. With a hub secured by hand (--auth, --tls-cert): DIR/ID.pass becomes
/etc/camhub/ID.pass (mode 0640, group camhub) and DIR/ca.pem
/etc/camhub/ca.pem, when present.
Exit status: 0 when every agent is running, 1 otherwise.
EOF
}

say() { printf '%s\n' "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

agent='' unit='' config_dir=. packages_file='' extra_packages='' replace=0 config_dir_name=''
script_dir=$(cd "$(dirname "$0")" && pwd)
while [ $# -gt 0 ]; do
	case $1 in
	--agent) agent=${2:?--agent needs a file}; shift 2 ;;
	--unit) unit=${2:?--unit needs a file}; shift 2 ;;
	--config-dir) config_dir=${2:?--config-dir needs a directory}; shift 2 ;;
	--packages-file) packages_file=${2:?--packages-file needs a file}; shift 2 ;;
	--packages) extra_packages=${2?--packages needs a list}; shift 2 ;;
	--replace-configs) replace=1; shift ;;
	--config-dir-name) config_dir_name=${2:?--config-dir-name needs a name}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) usage >&2; die "unknown option $1" ;;
	*) break ;;
	esac
done
ids="$*"
[ -n "$unit" ] || unit=$script_dir/camhub-agent@.service
[ -n "$agent" ] || { usage >&2; die "--agent is required"; }
[ -f "$agent" ] || die "no agent binary $agent"
[ -f "$unit" ] || die "no unit file $unit"
[ -d "$config_dir" ] || die "no directory $config_dir"
# How to call --config-dir in messages (install.sh: the laptop's directory).
[ -n "$config_dir_name" ] || config_dir_name=$config_dir
[ "$(id -u)" = 0 ] || die "run as root (sudo)"
[ -d /run/systemd/system ] || die "systemd is not running here: camhub-agent needs it"
for id in $ids; do
	case $id in
	*[!A-Za-z0-9_-]* | "") die "camera id '$id': use 1-64 characters of A-Z a-z 0-9 _ -" ;;
	esac
	[ ${#id} -le 64 ] || die "camera id '$id' is longer than 64 characters"
done

bin=/usr/local/bin/camhub-agent
unit_dst=/etc/systemd/system/camhub-agent@.service
etc=/etc/camhub
# The settings files as last installed, to tell edits made here from ours.
state=/var/lib/camhub/installed

# --- packages ---------------------------------------------------------------
want=$extra_packages
if [ -n "$packages_file" ]; then
	[ -f "$packages_file" ] || die "no packages file $packages_file"
	want="$want $(grep -v '^#' "$packages_file" | tr '\n' ' ')"
fi
missing=
for p in $want; do
	case $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
if [ -n "$missing" ]; then
	say "packages: installing$missing (apt-get)"
	log=$(mktemp)
	# shellcheck disable=SC2086 # a list of package names
	if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; } >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		die "apt-get could not install$missing"
	fi
	rm -f "$log"
else
	say "packages: all present"
fi

# --- user -------------------------------------------------------------------
if ! getent passwd camhub >/dev/null; then
	useradd --system --user-group --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin --comment "camhub agent" --groups video camhub
	say "user: created camhub (groups camhub, video)"
elif ! id -nG camhub | tr ' ' '\n' | grep -qx video; then
	usermod -a -G video camhub
	say "user: added camhub to group video"
else
	say "user: camhub exists"
fi

# --- binary and unit ----------------------------------------------------------
new_version=$("$agent" --version 2>&1) || {
	say "$new_version" >&2
	die "$agent does not run here (a missing library? ldd $agent | grep 'not found')"
}
restart_all=0
if cmp -s "$agent" "$bin"; then
	say "agent: $new_version, unchanged"
else
	old_version=none
	[ -x "$bin" ] && old_version=$("$bin" --version 2>/dev/null || echo unknown)
	install -m 0755 -o root -g root "$agent" "$bin.new"
	mv -f "$bin.new" "$bin"
	say "agent: $new_version installed as $bin (was: $old_version)"
	restart_all=1
fi
if cmp -s "$unit" "$unit_dst"; then
	say "unit: unchanged"
else
	install -m 0644 -o root -g root "$unit" "$unit_dst"
	systemctl daemon-reload
	say "unit: installed $unit_dst"
	restart_all=1
fi

install -d -m 0750 -o root -g camhub "$etc"
install -d -m 0755 -o root -g root /var/lib/camhub
install -d -m 0700 -o root -g root "$state"

# install_secret SRC DST MODE: copies a credential if it differs; never prints it.
install_secret() {
	[ -f "$1" ] || return 1
	cmp -s "$1" "$2" && return 1
	install -m "$3" -o root -g camhub "$1" "$2"
	say "credentials: installed $2"
}
if install_secret "$config_dir/ca.pem" "$etc/ca.pem" 0644; then restart_all=1; fi
joined=/var/lib/camhub-agent

# --- cameras ----------------------------------------------------------------
# The cameras set up earlier are updated along with the ones named.
for f in /etc/systemd/system/multi-user.target.wants/camhub-agent@*.service; do
	[ -e "$f" ] || continue
	id=${f##*/camhub-agent@}
	id=${id%.service}
	case " $ids " in *" $id "*) ;; *) ids="$ids $id" ;; esac
done
[ -n "$ids" ] || say "cameras: none named and none set up yet"

failed=0
summary=
for id in $ids; do
	cfg=$etc/agent-$id.yaml new=$config_dir/agent-$id.yaml orig=$state/agent-$id.yaml
	changed=0
	if [ ! -e "$cfg" ]; then
		if [ ! -f "$new" ]; then
			say "camera $id: ERROR: no $cfg here, and no agent-$id.yaml in $config_dir_name to install"
			failed=1 summary="$summary $id=no-settings"
			continue
		fi
		install -m 0640 -o root -g camhub "$new" "$cfg"
		cp "$new" "$orig"
		changed=1 note="settings installed"
	elif [ ! -f "$new" ]; then
		note="settings kept (none given for it)"
	elif cmp -s "$new" "$cfg"; then
		note="settings unchanged"
		cp "$new" "$orig"
		rm -f "$cfg.camhub-new"
	elif [ "$replace" = 1 ] || { [ -f "$orig" ] && cmp -s "$cfg" "$orig"; }; then
		if [ "$replace" = 1 ] && ! { [ -f "$orig" ] && cmp -s "$cfg" "$orig"; }; then
			cp -p "$cfg" "$cfg.camhub-old"
			note="settings replaced (the edited file is now $cfg.camhub-old)"
		else
			note="settings updated"
		fi
		install -m 0640 -o root -g camhub "$new" "$cfg"
		cp "$new" "$orig"
		rm -f "$cfg.camhub-new"
		changed=1
	else
		cmp -s "$new" "$cfg.camhub-new" || install -m 0640 -o root -g camhub "$new" "$cfg.camhub-new"
		note="settings edited here, kept; the new version is $cfg.camhub-new (--replace-configs to use it)"
	fi
	# Edited here or not, the file stays readable by the agent only.
	chown root:camhub "$cfg"
	chmod 0640 "$cfg"
	if install_secret "$config_dir/$id.pass" "$etc/$id.pass" 0640; then changed=1; fi
	# The join token goes where the agent keeps joined credentials (the
	# unit's StateDirectory), readable by the agent alone.
	if [ -f "$config_dir/$id.join" ] && ! cmp -s "$config_dir/$id.join" "$joined/agent-$id.join"; then
		install -d -m 0700 -o camhub -g camhub "$joined"
		install -m 0600 -o camhub -g camhub "$config_dir/$id.join" "$joined/agent-$id.join"
		say "credentials: installed $id's join token as $joined/agent-$id.join"
		changed=1
	fi

	u=camhub-agent@$id.service
	systemctl enable --quiet "$u"
	if [ "$changed" = 1 ] || [ "$restart_all" = 1 ] || ! systemctl is-active --quiet "$u"; then
		# reset-failed: a unit stopped by its start limit may start again.
		systemctl reset-failed "$u" 2>/dev/null || true
		systemctl restart "$u" || true
		action=started
	else
		action=running
	fi
	# Up means: the unit is active and the agent logged "agent starting"
	# (its settings were accepted). A bad setting makes it exit at once.
	inv=$(systemctl show -p InvocationID --value "$u")
	nr=$(systemctl show -p NRestarts --value "$u")
	deadline=$(($(date +%s) + 20))
	ok=0
	while :; do
		st=$(systemctl show -p ActiveState --value "$u")
		if [ "$st" = active ] && { [ "$action" = running ] ||
			journalctl -q -o cat "_SYSTEMD_INVOCATION_ID=$inv" 2>/dev/null | grep -q 'agent starting'; }; then
			ok=1
			break
		fi
		case $st in failed | inactive) break ;; esac
		[ "$(systemctl show -p SubState --value "$u")" != auto-restart ] || break
		[ "$(systemctl show -p NRestarts --value "$u")" = "$nr" ] || break
		[ "$(date +%s)" -lt "$deadline" ] || break
		sleep 0.2
	done
	if [ "$ok" = 1 ]; then
		say "camera $id: $action; $note"
		summary="$summary $id=$action"
	else
		say "camera $id: ERROR: $u is not running ($note). Its last log lines:"
		journalctl -q -n 8 --no-pager -u "$u" 2>&1 | sed 's/^/    /' || true
		failed=1 summary="$summary $id=FAILED"
	fi
done

say "summary: $new_version;${summary:- no cameras}"
exit "$failed"
