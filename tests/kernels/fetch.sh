#!/usr/bin/env bash
# Fetch Debian's signed kernel images for the kernel matrix (`make test-kernels`) and the virtme-ng tool venv.
#
#   tests/kernels/fetch.sh [5.10] [6.1] [6.12]     # default: all three
#   KERNELS_REFRESH=1 tests/kernels/fetch.sh        # re-resolve each suite's newest kernel, fetch it if it changed
#
# Output, under $KERNELS_DIR (default .kernels/ at the repo top, git-ignored):
#   <series>/boot/vmlinuz-<release>, <series>/lib/modules/<release>/ (depmod'ed), <series>/.release
#   venv/bin/vng (virtme-ng, pinned; its own venv, not the project's .venv)
# A second run finds <series>/.release and the venv and downloads nothing.
#
# Why it is done this way:
# - Debian's kernels are the ones users of these releases run, already built and signed: 5.10 is bullseye's,
#   6.1 bookworm's, 6.12 trixie's. Each suite's `linux-image-amd64` metapackage depends on its current image,
#   which names the release; a glob over the suite's package names is the fallback.
# - apt runs with a PRIVATE configuration (own sources.list, empty parts dir, own lists and cache), so nothing
#   under /etc or /var/lib/apt changes. The mirror is read from the system's own apt sources at run time and
#   written nowhere. Bullseye's and trixie's keys ship in bookworm's debian-archive-keyring.
#   APT::Sandbox::User=root: the _apt user cannot write into root-owned private directories.
# - `apt-get download` + `dpkg-deb -x` unpack without installing: the image never touches /boot or /lib/modules.
# - `depmod -b`: the .deb ships no modules.dep; virtme-ng needs it to find the 9p/virtio modules the guest
#   loads from its initramfs (Debian builds them as modules). Trixie's package puts modules under usr/lib/
#   while bookworm's depmod looks under lib/, so a lib -> usr/lib link is made when needed.
# - virtme-ng is pinned (1.42): matrix.py patches one string of its initramfs script (the 9p root mount) to
#   add cache=loose, and checks the string is still there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
dir=${KERNELS_DIR:-$top/.kernels}
VIRTME_NG_VERSION=${VIRTME_NG_VERSION:-1.42}
TOOL_PYTHON=${TOOL_PYTHON:-/usr/bin/python3}

die() { printf 'kernels: %s\n' "$*" >&2; exit 1; }
say() { printf 'kernels: %s\n' "$*"; }

# series -> Debian suite and the image package glob of that suite.
suite_of() {
    case "$1" in
        5.10) echo bullseye ;;
        6.1) echo bookworm ;;
        6.12) echo trixie ;;
        *) die "unknown kernel series '$1' (known: 5.10 6.1 6.12)" ;;
    esac
}
glob_of() {
    case "$1" in
        5.10) echo 'linux-image-5.10.0-*-amd64' ;;
        6.1) echo 'linux-image-6.1.0-*-amd64' ;;
        6.12) echo 'linux-image-6.12.*+deb13-amd64' ;;
    esac
}

# The first non-security URI of the system's apt sources (deb822 or one-line format), as fetch-build.sh does.
system_mirror() {
    local uri=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources |
              grep -v -- '-security' | head -n 1 || true)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }' \
              /etc/apt/sources.list | grep -v -- '-security' | head -n 1 || true)
    fi
    [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
    printf '%s\n' "${uri%/}"
}

# Private apt state of one suite, kept in $dir/apt/<suite> (small; the lists are refreshed on each resolve).
apt_opts() {
    local a="$dir/apt/$1"
    printf '%s\0' -o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=$a/parts" \
        -o "Dir::State::Lists=$a/lists" -o "Dir::State::status=$a/status" -o "Dir::Cache=$a/cache" \
        -o Acquire::Languages=none -o APT::Sandbox::User=root -qq
}

resolve() {  # series -> newest image package name of its suite
    local series=$1 suite glob a pkg
    suite=$(suite_of "$series")
    glob=$(glob_of "$series")
    a="$dir/apt/$suite"
    mkdir -p "$a/parts" "$a/lists/partial" "$a/cache/archives/partial"
    : >"$a/status"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$(system_mirror)" "$suite" \
        >"$a/sources.list"
    local -a apt
    mapfile -d '' apt < <(apt_opts "$suite")
    apt-get "${apt[@]}" update >&2 || die "private apt-get update for $suite failed"
    pkg=$(apt-cache "${apt[@]}" depends linux-image-amd64 2>/dev/null |
          awk '$1 == "Depends:" {print $2}' | head -n 1 || true)
    # shellcheck disable=SC2254
    case "$pkg" in $glob) ;; *)
        pkg=$(apt-cache "${apt[@]}" pkgnames linux-image- | while read -r p; do
                  case "$p" in $glob) echo "$p" ;; esac
              done | sort -V | tail -n 1) ;;
    esac
    [ -n "$pkg" ] || die "no package matching $glob in $suite"
    printf '%s\n' "$pkg"
}

fetch_one() {
    local series=$1 suite pkg release dest debs deb
    suite=$(suite_of "$series")
    dest="$dir/$series"
    if [ -f "$dest/.release" ] && [ -z "${KERNELS_REFRESH:-}" ]; then
        say "$series: $(cat "$dest/.release") (cached)"
        return
    fi
    pkg=$(resolve "$series")
    release=${pkg#linux-image-}
    if [ -f "$dest/.release" ] && [ "$(cat "$dest/.release")" = "$release" ]; then
        say "$series: $release is still the newest in $suite (cached)"
        return
    fi
    debs="$dir/debs"
    mkdir -p "$debs"
    deb=$(compgen -G "$debs/${pkg}_*.deb" | head -n 1 || true)
    if [ -z "$deb" ]; then
        say "$series: downloading $pkg from $suite"
        local -a apt
        mapfile -d '' apt < <(apt_opts "$suite")
        (cd "$debs" && apt-get "${apt[@]}" download "$pkg") || die "apt-get download $pkg failed"
        deb=$(compgen -G "$debs/${pkg}_*.deb" | head -n 1 || true)
        [ -n "$deb" ] || die "apt-get download $pkg left no .deb in $debs"
    fi
    rm -rf "$dest.tmp" "$dest"
    mkdir -p "$dest.tmp"
    dpkg-deb -x "$deb" "$dest.tmp"
    if [ ! -d "$dest.tmp/lib/modules" ] && [ -d "$dest.tmp/usr/lib/modules" ]; then
        ln -s usr/lib "$dest.tmp/lib"
    fi
    [ -f "$dest.tmp/boot/vmlinuz-$release" ] || die "$deb has no boot/vmlinuz-$release"
    [ -d "$dest.tmp/lib/modules/$release" ] || die "$deb has no modules for $release"
    depmod -b "$dest.tmp" "$release" || die "depmod -b $dest.tmp $release failed"
    printf '%s\n' "$release" >"$dest.tmp/.release"
    mv "$dest.tmp" "$dest"
    rm -f "$deb"  # the unpacked tree is the cache; the .deb would only double the disk use
    say "$series: $release unpacked in $dest"
}

tool_venv() {
    local venv="$dir/venv"
    if [ -x "$venv/bin/vng" ] && [ "$(cat "$venv/.virtme-ng" 2>/dev/null)" = "$VIRTME_NG_VERSION" ]; then
        return
    fi
    say "installing virtme-ng==$VIRTME_NG_VERSION into $venv"
    rm -rf "$venv"
    "$TOOL_PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "virtme-ng==$VIRTME_NG_VERSION" ||
        die "pip install virtme-ng==$VIRTME_NG_VERSION failed"
    printf '%s\n' "$VIRTME_NG_VERSION" >"$venv/.virtme-ng"
}

command -v apt-get >/dev/null || die "apt-get not found"
command -v depmod >/dev/null || die "depmod not found (install kmod)"
mkdir -p "$dir"
[ $# -gt 0 ] || set -- 5.10 6.1 6.12
for series in "$@"; do
    suite_of "$series" >/dev/null
    fetch_one "$series"
done
tool_venv
