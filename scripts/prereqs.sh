#!/bin/sh
# The machine tools the tests drive for real (KVM guests built with gcc, QEMU as the peer, iproute2 and ping
# for taps in network namespaces, losetup, setpriv and useradd for the access tests). Installs what is missing
# from Debian's packages when it can (root with apt-get), and otherwise stops with one line naming them.
set -eu
missing=""
for pair in gcc:gcc as:binutils objcopy:binutils qemu-img:qemu-utils qemu-io:qemu-utils \
  qemu-system-x86_64:qemu-system-x86 ip:iproute2 ping:iputils-ping losetup:mount setpriv:util-linux \
  useradd:passwd mkfifo:coreutils xorriso:xorriso /usr/share/seabios/bios-256k.bin:seabios \
  extlinux:extlinux /usr/lib/syslinux/modules/bios/ldlinux.c32:syslinux-common mkfs.ext2:e2fsprogs \
  iasl:acpica-tools; do
  tool=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -e "$tool" ]; then
    case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "prereqs: installing from apt:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  exit 0
fi
echo "prereqs: missing tools; install these Debian packages first (as root):$missing" >&2
exit 1
