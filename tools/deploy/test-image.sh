#!/usr/bin/env bash
# Builds the container image (tools/deploy/Dockerfile) with podman and runs
# it as a user would:
#   - replay on recordings/sample.sqlite mounted read-only, on a read-only
#     root filesystem with every capability dropped: /__rewind/health, a
#     replayed body and a replayed stream byte for byte against the
#     recording's export, the user and group (10001), `ls` and `verify` on
#     the read-only mount, and SIGTERM in the middle of a stream (the
#     stream completes, exit 0);
#   - record against a backend on the host's loopback (--network host) into
#     a volume owned by 10001: the exchange lands, and SIGTERM leaves one
#     self-contained file.
# Prints its own elapsed time and the image's build time and size.
#
# Needs root. Installs podman, runc and debootstrap from Debian if missing
# (tools/setup/deps.sh --image), and uses a containers.conf of its own (CONTAINERS_CONF; /etc is not
# touched): runc, because crun rejects this kind of machine's hybrid cgroup
# layout, and explicit ulimits, because root here lacks CAP_SYS_RESOURCE
# and cannot raise them. No container registry is reachable, so the Debian
# base images are made with `debootstrap --variant=minbase bookworm` from
# the mirror apt uses and imported (bookworm-slim: the same root without
# documentation, manual pages and translations, as Debian's slim images);
# they are cached in $REWIND_IMAGE_CACHE (default /var/cache/rewind-image)
# and in podman's storage, as are the image's layers.
#
# Exit 0 when everything holds, or with a "SKIP:" line saying why when
# podman cannot run here; 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)
say() { echo "test-image: $*"; }
elapsed() { echo $(( $(date +%s) - started )); }
skip() { say "SKIP: $* ($(elapsed) s)"; exit 0; }
fail() { say "FAIL: $*"; exit 1; }

image=localhost/rewind:test
cache=${REWIND_IMAGE_CACHE:-/var/cache/rewind-image}
sample=$PWD/recordings/sample.sqlite

[[ $(id -u) -eq 0 ]] ||
  skip "needs root (rootful podman, debootstrap); run it as root or in CI"

# --- podman from Debian ------------------------------------------------------
tools/setup/deps.sh --image || skip "cannot install podman, runc and debootstrap from Debian"

work=$(mktemp -d /tmp/rewind-image-XXXXXX)
containers=()
backend_pid=""
cleanup() {
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  [[ -n $backend_pid ]] && kill "$backend_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf
if ! out=$(podman info 2>&1 >/dev/null); then
  skip "podman does not work here: $(tail -1 <<<"$out")"
fi

# --- Debian base images --------------------------------------------------------
# The mirror apt uses for bookworm (deb822 .sources or one-line lists).
mirror() {
  python3 - <<'EOF'
import glob, re
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for block in re.split(r"\n\s*\n", open(path).read()):
        fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", block, re.M))
        if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
            print(fields["URIs"].split()[0]); raise SystemExit
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
            print(words[1]); raise SystemExit
print("http://deb.debian.org/debian")
EOF
}

make_base_archives() {
  local root=$cache/root url
  url=$(mirror)
  say "making the Debian base: debootstrap --variant=minbase bookworm from $url"
  rm -rf "$root"
  mkdir -p "$cache"
  if ! debootstrap --variant=minbase bookworm "$root" "$url" > "$work/debootstrap.log" 2>&1; then
    tail -5 "$work/debootstrap.log"
    rm -rf "$root"
    skip "debootstrap could not make a bookworm root from $url"
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
         "$root"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$root" -cf "$cache/bookworm.tar.partial" .
  # As Debian's slim images: no documentation, manual pages or
  # translations, now or in packages installed later.
  mkdir -p "$work/slim/etc/dpkg/dpkg.cfg.d"
  cat > "$work/slim/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  tar --numeric-owner -C "$root" \
      --exclude='./usr/share/man/*' --exclude='./usr/share/info/*' \
      --exclude='./usr/share/locale/*' --exclude='./usr/share/doc/*/[!c]*' \
      -cf "$cache/bookworm-slim.tar.partial" . \
      -C "$work/slim" ./etc/dpkg/dpkg.cfg.d/slim
  mv "$cache/bookworm.tar.partial" "$cache/bookworm.tar"
  mv "$cache/bookworm-slim.tar.partial" "$cache/bookworm-slim.tar"
  rm -rf "$root"
}

for tag in bookworm bookworm-slim; do
  if ! podman image exists "docker.io/library/debian:$tag"; then
    [[ -f $cache/$tag.tar ]] || make_base_archives
    say "importing debian:$tag from $cache/$tag.tar"
    podman import -q --change 'CMD ["bash"]' "$cache/$tag.tar" \
      "docker.io/library/debian:$tag" >/dev/null
  fi
done
if ! out=$(podman run --rm docker.io/library/debian:bookworm-slim true 2>&1); then
  skip "podman cannot run a container here: $(tail -1 <<<"$out")"
fi

# --- build ----------------------------------------------------------------------
say "building $image (tools/deploy/Dockerfile)"
build_start=$(date +%s)
# The build stage is tagged too, so that pruning keeps its layers (the
# installed packages) for the next build and drops older ones.
if ! podman build -f tools/deploy/Dockerfile --target build \
       -t localhost/rewind-build:test . > "$work/build.log" 2>&1 ||
   ! podman build -f tools/deploy/Dockerfile -t "$image" . >> "$work/build.log" 2>&1; then
  tail -40 "$work/build.log"
  fail "the image did not build"
fi
build_s=$(( $(date +%s) - build_start ))
podman image prune -f >/dev/null 2>&1 || true
grep -h "^runtime packages:" "$work/build.log" | tail -1 | sed 's/^/test-image: /'
mb() { podman image inspect "$1" --format '{{.Size}}' | awk '{printf "%.1f MB", $1 / 1e6}'; }
say "built in ${build_s} s: $image is $(mb "$image") (its base debian:bookworm-slim $(mb docker.io/library/debian:bookworm-slim))"

# --- replay -------------------------------------------------------------------------
[[ -r $sample ]] || fail "no $sample"
# A read-only copy anyone can read: the container's user owns no file here.
install -m 0444 "$sample" "$work/sample.sqlite"
sample=$work/sample.sqlite
run_ro() {  # a one-off rewind command on the sample mounted read-only
  podman run --rm --read-only --cap-drop all -v "$sample:/recordings/recording.sqlite:ro" \
    "$image" "$@" --db /recordings/recording.sqlite
}
run_ro export --out - > "$work/export.json" || fail "export on the read-only mount failed"
python3 - "$work" <<'EOF' || fail "cannot read the export"
import base64, json, sys
work = sys.argv[1]
doc = json.load(open(f"{work}/export.json"))
def body(part):
    if "chunks" in part:
        return b"".join(decode(c["data"], c.get("encoding")) for c in part["chunks"])
    return decode(part.get("body", ""), part.get("body_encoding"))
def decode(data, encoding):
    return base64.b64decode(data) if encoding == "base64" else data.encode()
plain = next(e for e in doc["exchanges"] if not e["response"]["chunked"])
stream = next(e for e in doc["exchanges"] if e["response"]["chunked"])
for name, e in (("plain", plain), ("stream", stream)):
    open(f"{work}/{name}.request", "wb").write(body(e["request"]))
    open(f"{work}/{name}.expected", "wb").write(body(e["response"]))
    open(f"{work}/{name}.path", "w").write(e["request"]["path"])
EOF

replay=rewind-test-replay-$$
containers+=("$replay")
podman run -d --name "$replay" --read-only --cap-drop all \
  --security-opt no-new-privileges -p 127.0.0.1::8080 \
  -v "$sample:/recordings/recording.sqlite:ro" "$image" >/dev/null ||
  fail "the replay container did not start"
port=$(podman port "$replay" 8080/tcp | head -1 | sed 's/.*://')
url=http://127.0.0.1:$port
for _ in $(seq 100); do
  curl -fsS "$url/__rewind/health" > "$work/health" 2>/dev/null && break
  if [[ $(podman inspect "$replay" --format '{{.State.Running}}') != true ]]; then
    podman logs "$replay" 2>&1 | tail -5
    fail "the replay container exited ($(podman inspect "$replay" --format '{{.State.ExitCode}}'))"
  fi
  sleep 0.1
done
say "\$ curl $url/__rewind/health"
cat "$work/health"; echo
grep -q '"status":"ok"' "$work/health" || fail "health is not ok"

post() {  # post NAME: sends the recorded request, keeps headers and body
  curl -sS -D "$work/$1.headers" -o "$work/$1.body" -H 'Content-Type: application/json' \
    --data-binary "@$work/$1.request" "$url$(cat "$work/$1.path")"
}
post plain
say "\$ curl -i $url$(cat "$work/plain.path") --data-binary '$(cat "$work/plain.request")'"
tr -d '\r' < "$work/plain.headers"; cat "$work/plain.body"; echo
cmp -s "$work/plain.body" "$work/plain.expected" ||
  fail "the replayed body differs from the recording's"
grep -qi '^X-Rewind: hit' "$work/plain.headers" || fail "no X-Rewind: hit"
say "replayed body: $(wc -c < "$work/plain.body") bytes, identical to the recording's"

uid=$(podman exec "$replay" id -u) gid=$(podman exec "$replay" id -g)
names=$(podman exec "$replay" id -un):$(podman exec "$replay" id -gn)
[[ $uid:$gid == 10001:10001 && $names == rewind:rewind ]] ||
  fail "runs as $uid:$gid ($names), not 10001:10001 (rewind:rewind)"
say "runs as $uid:$gid ($names)"

for cmd in ls verify; do
  run_ro "$cmd" > "$work/$cmd.out" 2>&1 ||
    { cat "$work/$cmd.out"; fail "rewind $cmd on the read-only mount failed"; }
done
say "ls and verify on the read-only mount: $(tail -1 "$work/verify.out")"

# SIGTERM while a stream is being replayed (recorded pacing, ~0.2 s).
post stream &
stream_pid=$!
sleep 0.08
podman kill --signal TERM "$replay" >/dev/null
wait "$stream_pid" || fail "the stream broke off at SIGTERM"
code=$(podman wait "$replay")
cmp -s "$work/stream.body" "$work/stream.expected" ||
  fail "the stream replayed during SIGTERM differs from the recording's"
[[ $code == 0 ]] || { podman logs "$replay" 2>&1 | tail -5; fail "exit $code after SIGTERM"; }
say "SIGTERM mid-stream: the stream completed ($(wc -c < "$work/stream.body") bytes, identical), exit 0"

# --- record -------------------------------------------------------------------------
python3 - > "$work/backend.port" <<'EOF' &
import http.server, json
class Backend(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        answer = json.dumps({"object": "chat.completion", "echo": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Backend)
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
backend_pid=$!
for _ in $(seq 50); do [[ -s $work/backend.port ]] && break; sleep 0.1; done
backend=http://127.0.0.1:$(cat "$work/backend.port")

data=$work/data
mkdir "$data"
chown 10001:10001 "$data"
chmod 0700 "$data"
record=rewind-test-record-$$
containers+=("$record")
podman run -d --name "$record" --network host --read-only --cap-drop all \
  --security-opt no-new-privileges -v "$data:/data" "$image" \
  record --backend "$backend" --db /data/rec.sqlite --listen 127.0.0.1:0 \
  --log-format json >/dev/null || fail "the record container did not start"
rec_url=""
for _ in $(seq 100); do
  rec_url=$(podman logs "$record" 2>/dev/null | grep -o 'http://127.0.0.1:[0-9]*' | head -1) && [[ -n $rec_url ]] && break
  sleep 0.1
done
[[ -n $rec_url ]] || { podman logs "$record" 2>&1 | tail -5; fail "record did not start listening"; }
request='{"model":"m","messages":[{"role":"user","content":"through the image"}]}'
answer=$(curl -fsS -H 'Content-Type: application/json' --data-binary "$request" \
  "$rec_url/v1/chat/completions") || fail "no answer through record"
[[ $answer == *'through the image'* ]] || fail "unexpected answer through record: $answer"
podman kill --signal TERM "$record" >/dev/null
code=$(podman wait "$record")
[[ $code == 0 ]] || { podman logs "$record" 2>&1 | tail -5; fail "record exited $code after SIGTERM"; }
files=$(ls -A "$data" | tr '\n' ' ')
[[ $files == "rec.sqlite " ]] || fail "record left $files, not one file"
podman run --rm --read-only --cap-drop all -v "$data:/data:ro" "$image" \
  ls --db /data/rec.sqlite --json > "$work/recorded.json" ||
  fail "cannot list what record wrote"
python3 - "$work/recorded.json" <<'EOF' || fail "the exchange did not land"
import json, sys
rows = json.load(open(sys.argv[1]))
rows = rows["exchanges"] if isinstance(rows, dict) else rows
assert len(rows) == 1 and rows[0]["path"] == "/v1/chat/completions", rows
EOF
say "record via --network host: the exchange landed in one file (rec.sqlite), SIGTERM exit 0"

say "all checks passed in $(elapsed) s (image build ${build_s} s)"
