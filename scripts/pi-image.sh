#!/usr/bin/env bash
# The emulated Raspberry Pi: a Debian bookworm arm64 system (Debian's kernel, systemd,
# openssh-server, sudo, Debian's nodejs) in qemu-system-aarch64 -M virt -cpu cortex-a72, reached
# over SSH through a loopback port forward, with host keys checked.
#
#   scripts/pi-image.sh build          build the disk image (cached; a second run does nothing)
#   scripts/pi-image.sh boot [--port N] [--mem MB] [--fresh]
#                                      boot it in the background (a copy-on-write overlay over the
#                                      built image; --fresh starts the overlay anew) and wait for SSH
#   scripts/pi-image.sh ssh [CMD...]   run a command on it (or a shell)
#   scripts/pi-image.sh stop           power it off (kills qemu after 60 s)
#   scripts/pi-image.sh status         exit 0 while it runs
#   scripts/pi-image.sh ssh-config     print the path of the ssh_config for host 'itera-pi'
#
# No binfmt_misc is needed, and little arm64 code runs at all. Stage 1, on this machine: apt
# (with its own state, for arm64) resolves and fetches the packages (the Essential set plus what
# the service and the tests need, no recommends); each is unpacked here, and dpkg's database is
# written as `dpkg --unpack` would leave it. Stage 2, inside the emulated machine booted once with
# a small initramfs of our own (busybox-static and the virtio/ext4 modules, from Debian's
# packages) whose /init hands over to a script instead of systemd: `dpkg --configure -a`, that is
# every maintainer script, and the settings. Nothing is decompressed or unpacked under emulation.
# The ext4 image is made without mounting anything (mke2fs -d). The SSH host keys and the user's
# key are made here, so known_hosts is written before the first boot.
# The emulated machine has ITERA_PI_SMP cores (default 2) and, when run as root, runs at
# nice ITERA_PI_NICE (default -5), so that its timings depend less on the rest of this machine.
# Cache: $ITERA_PI_CACHE (default ~/.cache/itera-pi), outside git. Needs (scripts/ci/setup-pi.sh):
# apt-get, dpkg-deb, qemu-system-arm, qemu-utils, e2fsprogs, kmod, cpio, openssh-client.
set -euo pipefail
CACHE="${ITERA_PI_CACHE:-$HOME/.cache/itera-pi}"
MIRROR="${ITERA_PI_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
IMG="$CACHE/base.img"
RUN="$CACHE/run"
SSHDIR="$CACHE/ssh"
# beside the Essential set: usr-is-merged (not usrmerge, whose conversion is done already), awk,
# useradd, the init, SSH, sudo, Debian's nodejs (the tarball, the device tests), curl for the tests
PACKAGES="usr-is-merged mawk passwd systemd systemd-sysv udev dbus openssh-server sudo nodejs iproute2 curl kmod procps"
# the image's format: bump when what build makes changes, so that a cached older image is rebuilt
IMAGE_VERSION=2
log() { [ -n "${QUIET:-}" ] || echo "pi-image: $*" >&2; }
current() { [ -f "$IMG" ] && [ "$(cat "$CACHE/.complete" 2>/dev/null)" = "$IMAGE_VERSION" ]; }
die() { echo "pi-image: $*" >&2; exit 1; }

need() {
  local miss=()
  for c in apt-get dpkg-deb qemu-system-aarch64 qemu-img mke2fs depmod cpio ssh ssh-keygen; do
    command -v "$c" >/dev/null 2>&1 || miss+=("$c")
  done
  [ ${#miss[@]} = 0 ] || die "missing: ${miss[*]} (run scripts/ci/setup-pi.sh)"
}

qemu_args() {
  # sets QEMU: $1 disk (raw or qcow2), $2 kernel command line extra, $3 port or empty, $4 memory MB
  local disk="$1" extra="$2" port="$3" mem="$4" fmt=raw net="user,id=n"
  [[ "$disk" == *.qcow2 ]] && fmt=qcow2
  [ -n "$port" ] && net+=",hostfwd=tcp:127.0.0.1:$port-:22"
  QEMU=(qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "${ITERA_PI_SMP:-2}" -m "$mem"
    -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.gz"
    -append "console=ttyAMA0 root=/dev/vda rw panic=5 $extra"
    -drive "if=none,file=$disk,format=$fmt,id=d,cache=unsafe" -device virtio-blk-pci,drive=d
    -netdev "$net" -device virtio-net-pci,netdev=n,romfile= -device virtio-rng-pci
    -display none -monitor none -serial "file:$RUN/console.log")
}

# the initramfs: busybox and the modules that reach the root file system; /init mounts /dev/vda
# and runs the init named by itera_init= on the kernel command line (default /sbin/init)
make_initrd() {
  local kver="$1" mods="$2" out="$3" dir
  dir="$(mktemp -d)"
  mkdir -p "$dir"/{bin,dev,proc,sys,newroot,mods}
  cp "$CACHE/busybox/bin/busybox" "$dir/bin/busybox"
  local order=() seen=" "
  add() {
    local m="$1" dep
    [[ "$seen" == *" $m "* ]] && return 0
    for dep in $(awk -v m="$m:" '$1 == m { for (i = 2; i <= NF; i++) print $i }' "$mods/lib/modules/$kver/modules.dep"); do add "$dep"; done
    seen+="$m "; order+=("$m")
  }
  for m in kernel/lib/crc16.ko kernel/lib/libcrc32c.ko kernel/crypto/crc32c_generic.ko kernel/fs/ext4/ext4.ko \
    kernel/drivers/virtio/virtio_pci.ko kernel/drivers/block/virtio_blk.ko; do add "$m"; done
  for m in "${order[@]}"; do cp "$mods/lib/modules/$kver/$m" "$dir/mods/"; echo "$(basename "$m")"; done > "$dir/mods/order"
  cat > "$dir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "itera-initrd: cannot mount /dev/vda"; poweroff -f; }
next=/sbin/init
for w in $(cat /proc/cmdline); do case "$w" in itera_init=*) next="${w#itera_init=}" ;; esac; done
umount /proc /sys; mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot "$next"
INIT
  chmod 755 "$dir/init"
  ( cd "$dir" && find . | cpio -o -H newc --quiet ) | gzip -1 > "$out"
  rm -rf "$dir"
}

# runs inside the emulated machine, once: dpkg configures what stage 1 unpacked, then the settings
stage2_script() {
  cat <<'STAGE2'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
mount -t proc proc /proc 2>/dev/null; mount -t sysfs sys /sys 2>/dev/null
step() { echo "itera-stage2: $(cut -d' ' -f1 /proc/uptime) s: $*"; }
step "configuring the packages (dpkg --configure -a)"
# the Essential ones first (as debootstrap does), then the rest in dpkg's own order
dpkg --configure --force-depends base-passwd base-files dpkg libc6 libc-bin perl-base mawk debconf \
  > /var/log/itera-stage2.log 2>&1
dpkg --configure -a >> /var/log/itera-stage2.log 2>&1 || dpkg --configure -a --force-depends >> /var/log/itera-stage2.log 2>&1
step "configured"
if [ -z "$(dpkg --audit)" ]; then
  rm -f /etc/dpkg/dpkg.cfg.d/itera-unsafe-io
  ldconfig
  echo itera-pi > /etc/hostname
  printf '127.0.0.1 localhost\n127.0.1.1 itera-pi\n::1 localhost\n' > /etc/hosts
  printf '/dev/vda / ext4 rw,relatime 0 1\n' > /etc/fstab
  printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n' > /etc/systemd/network/20-wired.network
  systemctl enable systemd-networkd ssh >/dev/null 2>&1
  # nothing that waits for a network or updates apt in the background of a test
  systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1
  useradd -m -s /bin/bash -G sudo pi
  install -d -m 700 -o pi -g pi /home/pi/.ssh
  install -m 600 -o pi -g pi /itera-seed/authorized_keys /home/pi/.ssh/authorized_keys
  echo 'pi ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/010_pi-nopasswd && chmod 440 /etc/sudoers.d/010_pi-nopasswd
  printf 'PasswordAuthentication no\n' > /etc/ssh/sshd_config.d/itera.conf
  rm -rf /itera-seed /itera-stage2
  sync
  step "settings done"
  echo "itera-stage2: OK"
else
  echo "itera-stage2: FAILED"; dpkg --audit; tail -60 /var/log/itera-stage2.log
fi
sync
echo o > /proc/sysrq-trigger
sleep 30
STAGE2
}

build() {
  need
  current && { log "cached: $IMG"; return 0; }
  local t0=$SECONDS work="$CACHE/work"
  rm -f "$IMG" "$CACHE/.complete"
  mkdir -p "$RUN" "$SSHDIR"
  [ -f "$CACHE/stage1.img" ] && [ -f "$CACHE/.stage1" ] || stage1 "$work"
  cp --sparse=always "$CACHE/stage1.img" "$IMG.part"

  second_stage "$t0"
}

# apt on this machine, set up for Debian arm64 in $1 (its own state; the machine's apt is not touched)
apt_setup() {
  local apt="$1"
  mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/kernel" "$apt/none"
  touch "$apt/state/status"
  printf 'APT::Architecture "arm64";\nAPT::Architectures { "arm64"; };\nAPT::Sandbox::User "root";\nAPT::Install-Recommends "false";\nDir::State "%s/state";\nDir::State::status "%s/state/status";\nDir::Cache "%s/cache";\nDir::Etc::SourceList "%s/sources.list";\nDir::Etc::SourceParts "%s/none";\nDir::Etc::Preferences "%s/none/p";\nDir::Etc::PreferencesParts "%s/none";\n' \
    "$apt" "$apt" "$apt" "$apt" "$apt" "$apt" "$apt" > "$apt/apt.conf"
  echo "deb $MIRROR $SUITE main" > "$apt/sources.list"
}

# Unpacks the .debs in $2 into the root $1 and writes dpkg's database as dpkg --unpack would have
# left it (every package "unpacked", conffiles as .dpkg-new, file lists, maintainer scripts,
# trigger interests), so that the emulated machine only runs `dpkg --configure -a`: no
# decompression and no unpacking under emulation. Documentation, manual pages and translations
# are left out, as the dpkg.cfg.d file written here will leave them out of later installs.
unpack_debs() {
  local root="$1" debs="$2" deb ctl pkg ma name f info="$1/var/lib/dpkg/info"
  local excl=(--exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' --exclude='./usr/share/info/*'
    --exclude='./usr/share/locale/*' --exclude='./usr/share/lintian/*')
  mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$info" "$root/var/lib/dpkg/updates" \
    "$root/var/lib/dpkg/triggers" "$root/etc/dpkg/dpkg.cfg.d"
  ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"   # merged /usr
  : > "$root/var/lib/dpkg/status"; : > "$root/var/lib/dpkg/available"; : > "$root/var/lib/dpkg/triggers/Unincorp"
  ctl="$(mktemp -d)"
  for deb in "$debs"/*.deb; do
    rm -rf "$ctl"/*; dpkg-deb -e "$deb" "$ctl"
    pkg="$(sed -n 's/^Package: //p' "$ctl/control")"
    ma="$(sed -n 's/^Multi-Arch: //p' "$ctl/control")"
    name="$pkg"; [ "$ma" = same ] && name="$pkg:arm64"
    # through tar --keep-directory-symlink: /bin, /lib, /sbin stay links into /usr
    dpkg-deb --fsys-tarfile "$deb" | tar -xv --numeric-owner --keep-directory-symlink "${excl[@]}" -C "$root" |
      sed -e 's|^\./$|/.|' -e 's|^\.||' -e 's|/$||' > "$info/$name.list"
    {
      sed -n '1p' "$ctl/control"; echo "Status: install ok unpacked"; sed '1d' "$ctl/control" | grep -v '^$'
      if [ -s "$ctl/conffiles" ]; then
        echo "Conffiles:"
        awk '{ print $NF }' "$ctl/conffiles" | while read -r f; do
          [ -e "$root$f" ] || [ -L "$root$f" ] || continue
          mv "$root$f" "$root$f.dpkg-new"; echo " $f newconffile"
        done
      fi
      echo
    } >> "$root/var/lib/dpkg/status"
    for f in "$ctl"/*; do
      case "${f##*/}" in control) ;; *) cp -p "$f" "$info/$name.${f##*/}" ;; esac
    done
    [ -f "$ctl/triggers" ] && awk -v p="$pkg" '
      $1 ~ /^interest/ { s = ($1 == "interest-noawait") ? p "/noawait" : p
        if ($2 ~ /^\//) print $2, s >> (ENVIRON["TRIG"] "/File"); else print s >> (ENVIRON["TRIG"] "/" $2) }' \
      TRIG="$root/var/lib/dpkg/triggers" "$ctl/triggers"
  done
  rm -rf "$ctl"
  printf 'path-exclude=/usr/share/doc/*\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\npath-exclude=/usr/share/locale/*\npath-exclude=/usr/share/lintian/*\n' \
    > "$root/etc/dpkg/dpkg.cfg.d/01-itera-nodoc"
  echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/itera-unsafe-io"
  # /etc/passwd and /etc/group: base-passwd's preinst is plain sh that honours DPKG_ROOT; the other
  # preinsts do nothing on a first install
  DPKG_ROOT="$root" sh "$info/base-passwd.preinst" install
}

# on this machine: download, unpack, kernel, initramfs, keys, ext4 image (no arm64 code runs)
stage1() {
  local work="$1" t0=$SECONDS
  rm -rf "$work" "$CACHE/.stage1"; mkdir -p "$work"
  # keys first: the host keys go into the image, so known_hosts is right from the first boot (and
  # the emulated machine spends no time making them)
  [ -f "$SSHDIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C itera-pi-user -f "$SSHDIR/id_ed25519"
  rm -rf "$SSHDIR/host"; mkdir -p "$SSHDIR/host"
  local k
  for k in ed25519 ecdsa rsa; do ssh-keygen -q -t "$k" -N '' -C itera-pi-host -f "$SSHDIR/host/ssh_host_${k}_key"; done
  echo "itera-pi $(cut -d' ' -f1,2 "$SSHDIR/host/ssh_host_ed25519_key.pub")" > "$SSHDIR/known_hosts"

  # the packages: the Essential set, what the service and the tests need, and their dependencies,
  # resolved and fetched by apt here (Debian arm64 bookworm, no recommends)
  local apt="$work/apt"
  apt_setup "$apt"
  export APT_CONFIG="$apt/apt.conf"
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -qq -d -y '?essential' $PACKAGES > "$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; die "apt-get cannot fetch the packages"; }
  local kpkg
  kpkg="$(apt-cache depends linux-image-arm64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
  [ -n "$kpkg" ] || die "cannot find the kernel package behind linux-image-arm64"
  ( cd "$apt/kernel" && apt-get download -qq "$kpkg" busybox-static >/dev/null )
  unset APT_CONFIG
  log "fetched $(find "$apt/cache/archives" -name '*.deb' | wc -l) packages in $((SECONDS - t0)) s"

  unpack_debs "$work/root" "$apt/cache/archives"
  log "unpacked in $((SECONDS - t0)) s"

  # Debian's kernel and its modules; busybox-static for the initramfs (unpacked, never run here)
  dpkg-deb --fsys-tarfile "$apt/kernel/${kpkg}"_*.deb | tar -x --keep-directory-symlink -C "$work/root"
  rm -rf "$CACHE/busybox"; mkdir -p "$CACHE/busybox"; dpkg-deb -x "$apt/kernel"/busybox-static_*.deb "$CACHE/busybox"
  local kver="${kpkg#linux-image-}"
  depmod -b "$work/root" "$kver"
  cp "$work/root/boot/vmlinuz-$kver" "$CACHE/vmlinuz"
  make_initrd "$kver" "$work/root" "$CACHE/initrd.gz"

  # what the second stage needs: the script, the user's key; the host keys in their place
  stage2_script > "$work/root/itera-stage2"; chmod 755 "$work/root/itera-stage2"
  mkdir -p "$work/root/itera-seed" "$work/root/etc/ssh"
  cp "$SSHDIR/id_ed25519.pub" "$work/root/itera-seed/authorized_keys"
  for k in ed25519 ecdsa rsa; do
    install -m 600 "$SSHDIR/host/ssh_host_${k}_key" "$work/root/etc/ssh/"
    install -m 644 "$SSHDIR/host/ssh_host_${k}_key.pub" "$work/root/etc/ssh/"
  done
  log "mke2fs -d (no mounting)"
  mke2fs -q -t ext4 -L itera-pi -d "$work/root" "$CACHE/stage1.img" 3G
  rm -rf "$work"
  touch "$CACHE/.stage1"
  log "stage 1 done in $((SECONDS - t0)) s"
}

second_stage() {
  local t0="$1"

  log "second stage inside qemu-system-aarch64 (cortex-a72, emulated: the slow part)"
  local t1=$SECONDS
  : > "$RUN/console.log"
  qemu_args "$IMG.part" "itera_init=/itera-stage2" "" 2048
  QEMU+=(-no-reboot)   # a panic (panic=5) ends qemu instead of looping
  timeout "${ITERA_PI_STAGE2_TIMEOUT:-3600}" "${QEMU[@]}" || true
  grep -q "itera-stage2: OK" "$RUN/console.log" || { tail -40 "$RUN/console.log" >&2; die "the second stage failed (console: $RUN/console.log)"; }
  log "second stage done in $((SECONDS - t1)) s"
  mv "$IMG.part" "$IMG"
  rm -f "$CACHE/stage1.img" "$CACHE/.stage1"
  echo "$IMAGE_VERSION" > "$CACHE/.complete"
  log "built $IMG in $((SECONDS - t0)) s"
}

ssh_config() {
  local port; port="$(cat "$RUN/port" 2>/dev/null || echo 0)"
  cat > "$SSHDIR/config" <<CONF
Host itera-pi
  HostName 127.0.0.1
  Port $port
  User pi
  IdentityFile $SSHDIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSHDIR/known_hosts
  HostKeyAlias itera-pi
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
  ServerAliveInterval 5
  ServerAliveCountMax 6
CONF
  echo "$SSHDIR/config"
}

running() { [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; }

wait_ssh() {
  local limit="$1" t0=$SECONDS cfg; cfg="$(ssh_config)"
  while [ $((SECONDS - t0)) -lt "$limit" ]; do
    running || { tail -30 "$RUN/console.log" >&2; die "qemu stopped while booting (console: $RUN/console.log)"; }
    ssh -F "$cfg" -o ConnectTimeout=5 itera-pi true 2>/dev/null && return 0
    sleep 2
  done
  tail -30 "$RUN/console.log" >&2
  die "no SSH after $limit s (console: $RUN/console.log)"
}

boot() {
  local port="" mem=2048 fresh=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port="$2"; shift 2 ;;
      --mem) mem="$2"; shift 2 ;;
      --fresh) fresh=1; shift ;;
      *) die "boot: unknown option '$1'" ;;
    esac
  done
  need
  current || die "no image of version $IMAGE_VERSION: run 'scripts/pi-image.sh build' first"
  running && die "already running (pid $(cat "$RUN/qemu.pid")); 'scripts/pi-image.sh stop' first"
  mkdir -p "$RUN"
  [ -n "$port" ] || port="$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  echo "$port" > "$RUN/port"
  if [ "$fresh" = 1 ] || [ ! -f "$RUN/disk.qcow2" ]; then
    rm -f "$RUN/disk.qcow2"
    qemu-img create -q -f qcow2 -b "$IMG" -F raw "$RUN/disk.qcow2"
  fi
  : > "$RUN/console.log"
  local t0=$SECONDS
  qemu_args "$RUN/disk.qcow2" "" "$port" "$mem"
  # As root, the emulated Pi runs at a higher priority than the rest of this machine (nice -5,
  # ITERA_PI_NICE): a Pi is a machine of its own, and its timings (a service back within 10 s of
  # kill -9) should depend less on whatever else shares the emulating cores.
  local nice=()
  [ "$(id -u)" = 0 ] && nice=(nice -n "${ITERA_PI_NICE:--5}")
  setsid "${nice[@]}" "${QEMU[@]}" < /dev/null > "$RUN/qemu.out" 2>&1 &
  echo $! > "$RUN/qemu.pid"
  wait_ssh "${ITERA_PI_BOOT_TIMEOUT:-600}"
  log "booted in $((SECONDS - t0)) s; ssh -F $SSHDIR/config itera-pi"
  echo "$((SECONDS - t0))" > "$RUN/boot-seconds"
}

stop() {
  running || { rm -f "$RUN/qemu.pid"; return 0; }
  local pid; pid="$(cat "$RUN/qemu.pid")"
  ssh -F "$(ssh_config)" itera-pi sudo systemctl poweroff >/dev/null 2>&1 || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill "$pid" 2>/dev/null || true
  rm -f "$RUN/qemu.pid"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  build) build ;;
  boot) boot "$@" ;;
  ssh) ssh -F "$(ssh_config)" itera-pi "$@" ;;
  ssh-config) ssh_config ;;
  wait-ssh) wait_ssh "${1:-600}" ;;
  stop) stop ;;
  status) running ;;
  path) echo "$CACHE" ;;
  -h|--help|help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "usage: $0 build | boot [--port N] [--mem MB] [--fresh] | ssh [CMD] | stop | status | ssh-config | path (see --help)" >&2; exit 2 ;;
esac
