#!/usr/bin/env bash
# Deploys Itera-Lite Edge to a Raspberry Pi (64-bit Raspberry Pi OS, or any arm64/x64 Linux with
# systemd) over SSH: installs the single executable as /usr/local/bin/itera, installs and starts
# the service (itera service install), runs the device tests and `itera bench` there, and brings
# the bench JSON home.
#
#   scripts/deploy-pi.sh [options] user@host
#     --port N           SSH port
#     -i, --identity F   SSH private key (default: ssh's own choice)
#     -F, --ssh-config F an ssh_config file (then the host may be an alias from it)
#     --model FILE       the model to serve and bench (default models/student-mix.gguf)
#     --listen ADDR      the service's address (default 127.0.0.1; 0.0.0.0 for the network)
#     --workers N        the service's worker threads, itera serve --workers (default 2)
#     --bench-runs N     itera bench --runs (default 3)
#     --out DIR          where the bench JSON goes (default reports/devices)
#     --no-tests         skip the device tests
#     --no-bench         skip `itera bench`
#     --dry-run          check the arguments and print the plan; nothing is copied or run
#
# Needs here: `npm run package` (dist/pkg/itera-linux-ARCH) and `npm run build`. Host keys are
# checked as ssh always does (StrictHostKeyChecking is left alone): connect once by hand first and
# compare the fingerprint. On the Pi: sudo without a password (Raspberry Pi OS's first user has it).
# Before anything changes there it checks the architecture, memory and free disk; if installing
# fails midway, the previous executable, unit and settings are put back (or, on a first install,
# everything is removed). The device tests need a `node` there (Debian's nodejs is enough: `sudo apt
# install nodejs`); without one they are skipped with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "deploy-pi: $*" >&2; exit 2; }
fail() { echo "deploy-pi: $*" >&2; exit 1; }

target="" port="" identity="" config="" model="models/student-mix.gguf" listen="127.0.0.1"
runs=3 out="reports/devices" dry=0 bench=1 tests=1 workers=2
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; [[ "$2" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$2'"; port="$2"; shift 2 ;;
    -i|--identity) [ $# -ge 2 ] || die "$1 needs a file"; identity="$2"; shift 2 ;;
    -F|--ssh-config) [ $# -ge 2 ] || die "$1 needs a file"; config="$2"; shift 2 ;;
    --model) [ $# -ge 2 ] || die "--model needs a file"; model="$2"; shift 2 ;;
    --listen) [ $# -ge 2 ] || die "--listen needs an address"; [[ "$2" =~ ^[0-9A-Za-z.:]+$ ]] || die "--listen must be an address, got '$2'"; listen="$2"; shift 2 ;;
    --workers) [ $# -ge 2 ] || die "--workers needs a number"; [[ "$2" =~ ^[1-9][0-9]?$ ]] || die "--workers must be a number from 1 to 99, got '$2'"; workers="$2"; shift 2 ;;
    --bench-runs) [ $# -ge 2 ] || die "--bench-runs needs a number"; [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "--bench-runs must be a positive number, got '$2'"; runs="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a folder"; out="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --no-bench) bench=0; shift ;;
    --no-tests) tests=0; shift ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$target" ] || die "one target only (got '$target' and '$1')"; target="$1"; shift ;;
  esac
done
[ -n "$target" ] || { usage >&2; die "missing the target, like pi@raspberrypi.local"; }
[[ "$target" =~ ^[A-Za-z0-9._-]+@[A-Za-z0-9._:-]+$ ]] || die "the target must look like user@host, got '$target'"
[ -z "$identity" ] || [ -f "$identity" ] || die "the SSH key $identity does not exist (make one with ssh-keygen -t ed25519, then ssh-copy-id -i $identity $target)"
[ -z "$config" ] || [ -f "$config" ] || die "the ssh_config $config does not exist"
[ -f "$model" ] || die "the model $model does not exist (run 'npm run models', or give --model FILE)"

ssh_opts=(-o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=10 -o ServerAliveCountMax=6)
[ -n "$config" ] && ssh_opts=(-F "$config" "${ssh_opts[@]}")
[ -n "$port" ] && ssh_opts+=(-p "$port")
[ -n "$identity" ] && ssh_opts+=(-i "$identity" -o IdentitiesOnly=yes)

if [ "$dry" = 1 ]; then
  echo "deploy-pi: plan for $target (dry run: nothing is copied or run)"
  echo "  1. ssh ${ssh_opts[*]} $target: check the architecture, memory, free disk and sudo"
  echo "  2. copy dist/pkg/itera-linux-ARCH, $model$([ "$tests" = 1 ] && echo ', the device tests and their inputs') into a staging folder"
  echo "  3. install /usr/local/bin/itera and run 'itera service install --model ... --host $listen --serve-args=\"--workers $workers\"' (rolled back on failure)"
  echo "  4. wait for /health"
  [ "$tests" = 1 ] && echo "  5. node device-tests/run.mjs --inputs ... --compare x86.json (same ids, logits within 1e-5)"
  [ "$bench" = 1 ] && echo "  6. itera bench --runs $runs --peers none --json, copied to $out/"
  exit 0
fi

# ssh with the errors people meet turned into what to do next
rssh() {
  local err rc=0
  err="$(mktemp)"
  ssh "${ssh_opts[@]}" "$target" "$@" 2> "$err" || rc=$?
  if [ "$rc" = 255 ]; then
    local e; e="$(tr -d '\r' < "$err")"; rm -f "$err"
    case "$e" in
      *"Host key verification failed"*|*"No "*"host key is known"*)
        fail "the host key of $target is not known or has changed: connect once by hand (ssh $target), check the fingerprint, then rerun" ;;
      *"REMOTE HOST IDENTIFICATION HAS CHANGED"*)
        fail "the host key of $target has CHANGED since last time: if the Pi was reflashed, remove the old key (ssh-keygen -R HOST), else stop" ;;
      *"Permission denied"*)
        fail "$target does not accept your SSH key: copy it there first (ssh-copy-id ${identity:+-i $identity }$target)" ;;
      *"Could not resolve hostname"*|*"Name or service not known"*)
        fail "cannot resolve the host in $target: check the name (raspberrypi.local needs mDNS) or use its IP address" ;;
      *"Connection refused"*|*"timed out"*|*"No route to host"*)
        fail "cannot reach SSH on $target (${e##*: }): is the Pi on, on this network, with SSH enabled?" ;;
      *) fail "ssh to $target failed: $e" ;;
    esac
  fi
  cat "$err" >&2; rm -f "$err"
  return "$rc"
}

t0=$SECONDS
echo "deploy-pi: checking $target"
probe="$(rssh 'uname -m; awk "/MemAvailable/ {print int(\$2/1024)}" /proc/meminfo; df -Pm /usr/local | awk "NR==2 {print \$4}"; df -Pm /var/tmp | awk "NR==2 {print \$4}"; sudo -n true 2>/dev/null && echo sudo || echo nosudo; command -v node || echo none; [ -d /run/systemd/system ] && echo systemd || echo nosystemd')"
mapfile -t p <<< "$probe"
machine="${p[0]:-?}" mem="${p[1]:-0}" disk="${p[2]:-0}" tmpdisk="${p[3]:-0}" sudo_ok="${p[4]:-}" rnode="${p[5]:-none}" init="${p[6]:-}"
case "$machine" in
  aarch64|arm64) arch=arm64 ;;
  x86_64) arch=x64 ;;
  armv7l|armv6l) fail "$target runs a 32-bit OS ($machine): flash the 64-bit Raspberry Pi OS (Pi 3, 4, 5), or use the tarball with Debian's nodejs (docs/pi.md)" ;;
  *) fail "$target is a $machine machine: there are executables for aarch64 and x86_64 only" ;;
esac
[ "$sudo_ok" = sudo ] || fail "$target: the user needs sudo without a password (Raspberry Pi OS's first user has it)"
[ "$init" = systemd ] || fail "$target does not run systemd"
exe="dist/pkg/itera-linux-$arch"
[ -f "$exe" ] || fail "$exe is missing: run 'npm run package' first"
exe_mb=$(( ($(stat -c %s "$exe") + $(stat -c %s "$model")) / 1048576 + 1 ))
# the executable and the model in staging (/var/tmp), then in /usr/local; a margin of 32 MB each
need_mb=$(( exe_mb + 32 ))
min_mem="${ITERA_DEPLOY_MIN_MEM_MB:-200}"
[ "$mem" -ge "$min_mem" ] || fail "$target has ${mem} MB of memory available, the service needs at least $min_mem MB: stop other programs or use a bigger Pi"
[ "$disk" -ge "$need_mb" ] || fail "$target has ${disk} MB free under /usr/local, the executable and model need $need_mb MB: free some space (sudo apt clean), nothing was changed"
[ "$tmpdisk" -ge "$need_mb" ] || fail "$target has ${tmpdisk} MB free under /var/tmp for staging, $need_mb MB are needed: free some space, nothing was changed"
echo "deploy-pi: $target is $machine, ${mem} MB available, ${disk} MB free; node there: $rnode"

# staging: everything in one tar stream, then one install step that undoes itself on failure
stage="$(rssh 'mktemp -d /var/tmp/itera-deploy.XXXXXX')"
cleanup() { rssh "rm -rf '$stage'" >/dev/null 2>&1 || true; }
trap cleanup EXIT
files=(-C "$(dirname "$exe")" "$(basename "$exe")" -C "$PWD/$(dirname "$model")" "$(basename "$model")")
if [ "$tests" = 1 ]; then
  inputs="$(mktemp -d)"
  node device-tests/run.mjs --write-inputs "$inputs/build/device-inputs" >/dev/null
  node device-tests/run.mjs --inputs "$inputs/build/device-inputs" --results "$inputs/build/device-inputs/x86.json" > "$inputs/x86.tap" \
    || fail "the device tests fail on this machine already (see $inputs/x86.tap)"
  mkdir -p "$inputs/dist/host"
  cp -r dist/host/runtime dist/host/convert "$inputs/dist/host/"
  mkdir -p "$inputs/build"; cp build/itera.wasm build/itera-scalar.wasm "$inputs/build/"
  cp -r device-tests "$inputs/"
  echo '{ "type": "module" }' > "$inputs/package.json"   # dist/host is ES modules
  files+=(-C "$inputs" build dist device-tests package.json)
fi
echo "deploy-pi: copying $(du -shL "$exe" | cut -f1) executable and the model"
tar -cz "${files[@]}" | rssh "tar -xz -C '$stage'"
[ "$tests" = 1 ] && rm -rf "$inputs"

mname="$(basename "$model")"
install_script="set -eu
s='$stage'; b=/usr/local/bin/itera; u=/etc/systemd/system/itera.service; r=/var/tmp/itera-rollback
rm -rf \$r; mkdir -p \$r
had=0; [ -e \$b ] && { had=1; cp -p \$b \$r/itera; }
[ -e \$u ] && cp -p \$u \$r/unit
[ -d /etc/itera ] && cp -a /etc/itera \$r/etc
[ -d /usr/local/share/itera ] && cp -a /usr/local/share/itera \$r/share
active=\$(systemctl is-active itera.service 2>/dev/null || true)
rollback() {
  echo 'deploy-pi: install failed: rolling back' >&2
  systemctl stop itera.service 2>/dev/null || true
  if [ \$had = 1 ]; then cp -p \$r/itera \$b; else rm -f \$b; fi
  if [ -e \$r/unit ]; then cp -p \$r/unit \$u; else systemctl disable itera.service 2>/dev/null || true; rm -f \$u; userdel itera 2>/dev/null || true; fi
  rm -rf /etc/itera /usr/local/share/itera
  [ -d \$r/etc ] && cp -a \$r/etc /etc/itera
  [ -d \$r/share ] && cp -a \$r/share /usr/local/share/itera
  systemctl daemon-reload
  [ \"\$active\" = active ] && systemctl start itera.service || true
  rm -rf \$r
  exit 1
}
trap rollback EXIT
install -m 755 \$s/$(basename "$exe") \$b.new && mv -f \$b.new \$b
[ \"\${ITERA_DEPLOY_FAIL_AFTER:-}\" = binary ] && { echo 'deploy-pi: failing on purpose (ITERA_DEPLOY_FAIL_AFTER=binary)' >&2; exit 1; }
\$b service install --model \$s/$mname --host $listen --serve-args='--workers $workers'
i=0; until \$b service status >/dev/null 2>&1; do i=\$((i+1)); [ \$i -le 120 ] || { \$b service status >&2 || true; journalctl -u itera -n 20 --no-pager >&2 || true; exit 1; }; sleep 1; done
trap - EXIT
rm -rf \$r
\$b service status"
echo "deploy-pi: installing the executable and the service"
rssh "sudo env ITERA_DEPLOY_FAIL_AFTER='${ITERA_DEPLOY_FAIL_AFTER:-}' sh -s" <<< "$install_script" \
  || fail "installing on $target failed; the previous state was put back"

status=0
if [ "$tests" = 1 ]; then
  if [ "$rnode" = none ]; then
    echo "deploy-pi: WARNING: no node on $target, so no device tests (sudo apt install nodejs)" >&2
  else
    echo "deploy-pi: device tests on $target"
    rssh "cd '$stage' && node device-tests/run.mjs --inputs build/device-inputs --compare build/device-inputs/x86.json" || status=1
  fi
fi
if [ "$bench" = 1 ]; then
  echo "deploy-pi: itera bench on $target ($runs runs)"
  mkdir -p "$out"
  host="${target#*@}"
  dest="$out/bench-${host//[^A-Za-z0-9._-]/_}-$machine.json"
  if rssh "cd '$stage' && /usr/local/bin/itera bench --model '$stage/$mname' --runs $runs --peers none --json bench.json >&2 && cat bench.json" > "$dest.part"; then
    mv "$dest.part" "$dest"
    echo "deploy-pi: bench JSON: $dest"
  else
    rm -f "$dest.part"; status=1
    echo "deploy-pi: itera bench failed on $target" >&2
  fi
fi
echo "deploy-pi: done in $((SECONDS - t0)) s$([ "$status" = 0 ] || echo ', with failures above')"
exit "$status"
