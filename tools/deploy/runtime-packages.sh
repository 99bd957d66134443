#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries a binary is
# linked against (its DT_NEEDED entries, found where the loader finds them
# with ldd, each file traced to its package with dpkg -S), one a line,
# sorted. apt installs what those libraries need in turn. The container
# image's runtime stage installs exactly these, so a library added to the
# build cannot be forgotten there.
# Usage: tools/deploy/runtime-packages.sh BINARY
set -euo pipefail
bin=${1:?usage: runtime-packages.sh BINARY}
die() { echo "runtime-packages: $*" >&2; exit 1; }

needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[[ -n $needed ]] || die "$bin links no shared library (is it dynamic?)"
resolved=$(ldd "$bin")

# dpkg knows each file by the path its package installed it under; with
# /lib merged into /usr/lib the loader may name it by the other one.
declare -A lib_of
candidates=()
for name in $needed; do
  path=$(awk -v n="$name" '$1 == n && $2 == "=>" {print $3}' <<<"$resolved")
  if [[ -z $path || $path == not ]]; then
    # The loader itself is listed by its path alone.
    path=$(awk -v n="$name" '$1 ~ "/" n "$" {print $1}' <<<"$resolved")
  fi
  [[ -n $path && $path == /* ]] || die "$bin needs $name, which this system lacks"
  for p in "$path" "$(readlink -f "$path")"; do
    for c in "$p" "${p#/usr}" "/usr${p#/usr}"; do
      candidates+=("$c")
      lib_of[$c]=$name
    done
  done
done

declare -A package_of
while IFS= read -r line; do
  # "libcurl4:amd64: /usr/lib/x86_64-linux-gnu/libcurl.so.4"
  [[ $line == diversion* ]] && continue
  package_of[${lib_of[${line#*: }]:-?}]=${line%%:*}
done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)

for name in $needed; do
  [[ -n ${package_of[$name]:-} ]] || die "no Debian package holds $name"
  echo "${package_of[$name]}"
done | sort -u
