#!/usr/bin/env bash
# Fetch the pinned libbpf release, verify it, and build a position-independent static libbpf.a.
#
#   vendor/libbpf/fetch-build.sh            # apt-get source from Debian trixie, through a private apt config
#   LIBBPF_TARBALL=/path/libbpf_1.5.0.orig.tar.gz vendor/libbpf/fetch-build.sh   # no apt needed
#
# Optional: LIBBPF_DEBIAN_TARBALL=/path/libbpf_<rev>.debian.tar.xz applies Debian's patches to an override
# tarball; LIBBPF_WORKDIR=dir puts download/, src/ and build/ somewhere other than beside this script.
#
# Output: $LIBBPF_WORKDIR/build/{lib/libbpf.a,include/bpf/*.h,include/linux/*.h}. A second run with the same
# pin finds the stamp and does nothing. Nothing under /etc is touched and no mirror host is written anywhere:
# the mirror is read from the system's own apt sources at run time.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${LIBBPF_WORKDIR:-$here}
# shellcheck source=/dev/null
. "$here/pin"

die() { printf 'libbpf: %s\n' "$*" >&2; exit 1; }
say() { printf 'libbpf: %s\n' "$*"; }

stamp="$work/build/.stamp"
want_stamp="$version $debian_revision $orig_sha256 ${LIBBPF_TARBALL:+override}"
if [ -f "$work/build/lib/libbpf.a" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
    say "libbpf $version already built in $work/build"
    exit 0
fi

orig_name="libbpf_${version}.orig.tar.gz"
download="$work/download"
mkdir -p "$download"

# The Debian source package's mirror: the first non-security URI of the system's apt sources (deb822 or
# one-line format). Trixie's signing keys ship in bookworm's debian-archive-keyring.
system_mirror() {
    local uri=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources |
              grep -v -- '-security' | head -n 1 || true)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" || $1 == "deb-src" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }' \
              /etc/apt/sources.list | grep -v -- '-security' | head -n 1 || true)
    fi
    [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set LIBBPF_TARBALL to a local $orig_name"
    printf '%s\n' "${uri%/}"
}

fetch_with_apt() {
    command -v apt-get >/dev/null || die "apt-get not found; set LIBBPF_TARBALL to a local $orig_name"
    local mirror apt
    mirror=$(system_mirror)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/cache/archives/partial"
    printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$mirror" \
        >"$tmp/sources.list"
    # A private configuration: our own source list, lists and cache, so the system's apt state is untouched.
    # Sandbox::User=root because the _apt user cannot write into a root-owned temporary directory.
    apt=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=$tmp/parts"
         -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
         -o Acquire::Languages=none -o APT::Sandbox::User=root -qq)
    say "fetching Debian source package libbpf=$debian_revision (trixie)"
    apt-get "${apt[@]}" update || die "private apt-get update failed"
    (cd "$download" && apt-get "${apt[@]}" source --download-only "libbpf=$debian_revision") ||
        die "apt-get source libbpf=$debian_revision failed"
}

if [ -n "${LIBBPF_TARBALL:-}" ]; then
    [ -f "$LIBBPF_TARBALL" ] || die "LIBBPF_TARBALL=$LIBBPF_TARBALL: no such file"
    tarball=$LIBBPF_TARBALL
    debian_tarball=${LIBBPF_DEBIAN_TARBALL:-}
else
    [ -f "$download/$orig_name" ] || fetch_with_apt
    tarball="$download/$orig_name"
    debian_tarball=$(compgen -G "$download/libbpf_${debian_revision}.debian.tar.*" | head -n 1 || true)
fi
[ -f "$tarball" ] || die "$tarball was not fetched"

actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$orig_sha256" ]; then
    die "sha256 mismatch for $tarball
  expected $orig_sha256
  got      $actual
refusing to build an unverified libbpf"
fi
say "verified $orig_name (sha256 $actual)"

src="$work/src"
rm -rf "$src" "$work/build"
mkdir -p "$src"
tar -xzf "$tarball" -C "$src" --strip-components=1
if [ -n "$debian_tarball" ]; then
    tar -xf "$debian_tarball" -C "$src"
    if [ -f "$src/debian/patches/series" ]; then
        while read -r patch _; do
            case "$patch" in ''|'#'*) continue ;; esac
            say "applying Debian patch $patch"
            patch -d "$src" -p1 --forward --quiet <"$src/debian/patches/$patch" || die "patch $patch does not apply"
        done <"$src/debian/patches/series"
    fi
else
    say "warning: no Debian tarball, building upstream source without Debian's patches"
fi

say "building libbpf.a (static, -fPIC)"
make -s -C "$src/src" -j"$(nproc 2>/dev/null || echo 2)" BUILD_STATIC_ONLY=1 EXTRA_CFLAGS=-fPIC \
    OBJDIR="$work/build/obj" DESTDIR="$work/build" PREFIX= LIBDIR=/lib INCLUDEDIR=/include UAPIDIR=/include \
    install install_uapi_headers >/dev/null
[ -f "$work/build/lib/libbpf.a" ] || die "build finished without $work/build/lib/libbpf.a"
printf '%s\n' "$want_stamp" >"$stamp"
say "built $work/build/lib/libbpf.a"
