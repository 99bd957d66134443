#!/usr/bin/env bash
# Installs the Debian packages rewind needs to build and test, if missing.
# Usage: tools/setup/deps.sh [--bench|--fuzz|--release|--image]
#   --bench adds nginx and wrk; --fuzz adds clang and its libFuzzer runtime;
#   --release installs only what building the rewind binary needs (the
#   container image's build stage); --image installs only what
#   tools/deploy/test-image.sh needs to build and run the image
set -euo pipefail

build=(
  g++ cmake make pkg-config
  libcpp-httplib-dev   # HTTP server and client (compiled library, see README)
  libcurl4-openssl-dev # the record proxy's backend calls (see README)
  libsqlitecpp-dev libsqlite3-dev
  libxxhash-dev        # XXH3-128 request keys
  rapidjson-dev        # JSON canonical form, diffs, admin bodies
  libcli11-dev         # command line
  libcereal-dev        # rewind JSON export and import
  libre2-dev           # --scrub-pattern, --normalize: patterns matched in linear time
  libssl-dev           # HMAC-SHA256 of scrub placeholders (libcrypto)
)
packages=(
  "${build[@]}"
  curl sqlite3         # the demo script
  libgtest-dev         # tests
  python3-yaml         # tests: tools/deploy/check.py parses the manifests
  python3-pytest       # tests: the pytest plugin in clients/python
  dpkg-dev             # tools/package.sh: dpkg-shlibdeps derives the Depends
  file                 # tools/package.sh: cpack runs dpkg-shlibdeps only with file(1)
)
# tools/deploy/check.py has kubectl parse the manifests. Debian's is in
# kubernetes-client; a kubectl already on PATH does as well (and the two
# packages cannot be installed together).
command -v kubectl >/dev/null || packages+=(kubernetes-client)
case "${1:-}" in
  --bench) packages+=(nginx-light wrk) ;;
  --fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
  --release) packages=("${build[@]}") ;;
  # podman's default runtime, crun, rejects these machines' cgroup layout.
  --image) packages=(podman runc debootstrap curl python3) ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    {
      echo "rewind setup: these Debian packages are missing: ${missing[*]}"
      echo "rewind setup: installing them needs root, and sudo is not installed. As root, run:"
      echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
      echo "then run this again."
    } >&2
    exit 1
  fi
  sudo="sudo"
fi
noun=packages
[[ ${#missing[@]} -eq 1 ]] && noun=package
echo "rewind setup: installing ${#missing[@]} Debian $noun (a few minutes on a fresh machine): ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
echo "rewind setup: apt-get update" >&2
$sudo apt-get update -qq
echo "rewind setup: apt-get install" >&2
# -q: one line per package unpacked and set up, no progress bars.
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
echo "rewind setup: packages installed" >&2
