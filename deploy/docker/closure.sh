#!/bin/bash
# closure.sh ROOT OUT FILE...: copies the ELF files FILE... (paths inside
# the Debian root ROOT, / for this system; or SRC=DEST, a file SRC of this
# system to put at DEST) into OUT at those paths, and
# every shared library they load, transitively (readelf -d: NEEDED), into
# OUT/usr/lib/<triplet> under its soname, with the dynamic loader at its
# path. OUT is then a root a dynamically linked program runs in, with
# nothing else of Debian: what the camhub agent, viewer and detector images
# are made of, for the build's own architecture (Dockerfile) and for arm64
# from a debootstrap root (scripts/images.sh).
#
# ROOT's libraries are looked up as the loader does without a cache: in
# /usr/lib/<triplet> and /lib/<triplet>, then /usr/lib and /lib. Prints the
# total size. Needs bash and readelf (binutils).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: closure.sh ROOT OUT FILE..." >&2; exit 2; }
root=${1%/}
out=$2
shift 2

first=$1
case $first in *=*) first=${first%%=*} ;; *) first=$root$first ;; esac
machine=$(readelf -h "$first" | sed -n 's/^ *Machine: *//p')
case $machine in
*X86-64*) triplet=x86_64-linux-gnu ;;
*AArch64*) triplet=aarch64-linux-gnu ;;
*ARM*) triplet=arm-linux-gnueabihf ;;
*) echo "closure.sh: unknown machine '$machine' of $1" >&2; exit 1 ;;
esac
libdir=/usr/lib/$triplet
dirs=("$root/usr/lib/$triplet" "$root/lib/$triplet" "$root/usr/lib" "$root/lib")

mkdir -p "$out$libdir"
# usrmerge, as in Debian: /lib and /lib64 are /usr's.
ln -sfn usr/lib "$out/lib"
declare -A seen=()
queue=()

add() { # add FILE(in ROOT, or a path of this system with -h) DEST(in OUT)
	local src=$root$1
	[ "$1" != -h ] || { src=$2; shift; }
	mkdir -p "$(dirname "$out$2")"
	cp -L "$src" "$out$2"
	chmod u+w "$out$2"
	queue+=("$src")
}

for f in "$@"; do
	case $f in
	*=*) src=${f%%=*} dest=${f#*=} ;;
	*) src=$root$f dest=$f ;;
	esac
	[ -e "$src" ] || { echo "closure.sh: no $src" >&2; exit 1; }
	add -h "$src" "$dest"
	interp=$(readelf -l "$src" 2>/dev/null | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
	if [ -n "$interp" ] && [ -z "${seen[$interp]:-}" ]; then
		seen[$interp]=1
		dest=$interp
		case $dest in /lib/* | /lib64/*) dest=/usr$dest ;; esac
		case $dest in /usr/lib64/*) mkdir -p "$out/usr/lib64" && ln -sfn usr/lib64 "$out/lib64" ;; esac
		add "$interp" "$dest"
	fi
done

while [ ${#queue[@]} -gt 0 ]; do
	f=${queue[0]}
	queue=("${queue[@]:1}")
	# Its RUNPATH (or RPATH) first, $ORIGIN being its directory.
	search=()
	origin=$(dirname "$(readlink -f "$f")")
	for rp in $(readelf -d "$f" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p' | tr : ' '); do
		case $rp in
		'${ORIGIN}'*) search+=("$origin${rp#'${ORIGIN}'}") ;;
		'$ORIGIN'*) search+=("$origin${rp#'$ORIGIN'}") ;;
		/*) search+=("$root$rp") ;;
		esac
	done
	for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		[ -z "${seen[$lib]:-}" ] || continue
		seen[$lib]=1
		found=
		for d in "${search[@]}" "${dirs[@]}"; do
			if [ -e "$d/$lib" ]; then found=$d/$lib; break; fi
		done
		[ -n "$found" ] || { echo "closure.sh: $lib (needed by $f) is not in $root/" >&2; exit 1; }
		# Flat, under its soname, where the loader looks by default.
		[ -e "$out$libdir/$lib" ] || add -h "$found" "$libdir/$lib"
	done
done
echo "closure.sh: ${#seen[@]} libraries, $(du -sh "$out" | cut -f1) in $out" >&2
