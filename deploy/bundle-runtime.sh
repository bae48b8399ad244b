#!/bin/sh
# Lays out a relocatable chartreuse tree for the container image:
#
#   PREFIX/bin/chartreuse     the binary, RUNPATH $ORIGIN/../lib
#   PREFIX/lib/*.so.*         every shared library it needs (directly or not) except glibc's,
#                             each with RUNPATH $ORIGIN
#   PREFIX/etc/ca-certificates.crt   CA bundle of the build system (when present)
#
# so that `cp -a PREFIX/. DIR/` anywhere (an init container copying into a shared emptyDir)
# gives a DIR/bin/chartreuse that runs in any image whose glibc is at least the build
# system's (2.36 for Debian 12), whatever else that image has or lacks.
#
# usage: deploy/bundle-runtime.sh BINARY PREFIX
# Needs: ldd, patchelf. Used by the Dockerfile; runnable as is on a Debian/Ubuntu host.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BINARY PREFIX" >&2
	exit 2
fi
binary=$1
prefix=$2

# Sonames that belong to glibc (the libc6 package): always taken from the image that runs
# the binary, never bundled, since they must match that image's dynamic loader.
is_glibc() {
	case "$1" in
	linux-vdso.so.* | linux-gate.so.* | ld-linux*.so.* | ld64.so.* | \
	libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | librt.so.* | \
	libresolv.so.* | libutil.so.* | libanl.so.* | libnsl.so.1 | libBrokenLocale.so.* | \
	libthread_db.so.* | libc_malloc_debug.so.* | libnss_*.so.*)
		return 0 ;;
	esac
	return 1
}

mkdir -p "$prefix/bin" "$prefix/lib"
install -m 0755 "$binary" "$prefix/bin/chartreuse"

# ldd lists the whole dependency closure, one "soname => path (address)" per line.
deps=$(ldd "$binary")
if printf '%s\n' "$deps" | grep -q 'not found'; then
	printf '%s\n' "$deps" >&2
	echo "$0: $binary has unresolved shared libraries" >&2
	exit 1
fi
printf '%s\n' "$deps" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' |
while read -r soname path; do
	if is_glibc "$soname"; then
		continue
	fi
	# Copied under its soname, following the symlink to the real file.
	cp -L "$path" "$prefix/lib/$soname"
	chmod 0644 "$prefix/lib/$soname"
	patchelf --set-rpath '$ORIGIN' "$prefix/lib/$soname"
	echo "bundled $soname ($path)"
done

# RUNPATH, not the legacy RPATH: the directory is searched for the binary's own needs, and
# each bundled library's RUNPATH ($ORIGIN) covers the libraries it needs in turn.
patchelf --set-rpath '$ORIGIN/../lib' "$prefix/bin/chartreuse"

if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	mkdir -p "$prefix/etc"
	install -m 0644 /etc/ssl/certs/ca-certificates.crt "$prefix/etc/ca-certificates.crt"
fi

# Check: every non-glibc library now resolves inside the bundle.
bad=0
ldd "$prefix/bin/chartreuse" | awk '$2 == "=>" { print $1, $3 }' > "$prefix/.ldd.$$"
while read -r soname path; do
	is_glibc "$soname" && continue
	case "$path" in
	"$prefix"/lib/*) ;;
	*)
		# ldd prints the path as searched: PREFIX may be relative or non-canonical there.
		if [ "$(readlink -f "$path")" != "$(readlink -f "$prefix/lib/$soname")" ]; then
			echo "$0: $soname resolves to $path, outside $prefix/lib" >&2
			bad=1
		fi ;;
	esac
done < "$prefix/.ldd.$$"
rm -f "$prefix/.ldd.$$"
[ "$bad" -eq 0 ] || exit 1
echo "bundle ready in $prefix: $(ls "$prefix/lib" | wc -l) libraries"
