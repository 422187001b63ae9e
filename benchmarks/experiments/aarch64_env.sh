#!/usr/bin/env bash
# Build (idempotently) and use an aarch64 userland for edgeemo's device stage, run under qemu-user.
#
#   benchmarks/experiments/aarch64_env.sh build                       # fetch + unpack everything (cached; re-run is a no-op)
#   benchmarks/experiments/aarch64_env.sh python [-cpu C] ARGS...     # aarch64 CPython 3.11 with edgeemo + device deps
#   benchmarks/experiments/aarch64_env.sh edgeemo [-cpu C] ARGS...    # the edgeemo CLI on aarch64
#   benchmarks/experiments/aarch64_env.sh count OUT.json [-cpu C] ARGS...  # python ARGS under the instruction-count plugin
#   benchmarks/experiments/aarch64_env.sh info                        # paths and versions
#
# Everything comes from package registries: Debian bookworm arm64 .debs (apt-get download + dpkg -x),
# aarch64 wheels from PyPI (pip download --platform ... --only-binary=:all:), Debian's qemu-user, and the
# qemu-plugin.h header from Debian's qemu source package (apt-get source, deb-src). Cache: $EDGEEMO_AARCH64_CACHE
# (default ~/.cache/edgeemo-aarch64), never inside the repo. Needs root for apt (dpkg --add-architecture arm64,
# apt-get install qemu-user gcc, a deb-src entry in /etc/apt/sources.list.d/edgeemo-aarch64-src.sources).
# -cpu defaults to $EDGEEMO_AARCH64_CPU or cortex-a72 (Raspberry Pi 4); cortex-a76 is the Pi 5.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${EDGEEMO_AARCH64_CACHE:-$HOME/.cache/edgeemo-aarch64}"
ROOT="$CACHE/root"          # Debian arm64 sysroot (qemu -L)
SITE="$CACHE/site"          # aarch64 wheels installed with pip --target
SHIM="$CACHE/shim"          # the repo's edgeemo namespace (edgeemo/, train/, export/, device/) as symlinks
PLUGIN="$CACHE/plugin/libedgeemo_insn.so"
PY_VERSION=3.11
HOST_PY="${HOST_PY:-$REPO/.venv/bin/python}"

# Same versions as the x86 venv where the project pins nothing; keep them explicit so results are reproducible.
WHEELS=(
  "numpy==2.4.6" "ai-edge-litert==2.3.0" "onnxruntime==1.32.0" "opencv-python-headless==4.14.0.94"
  "scipy==1.17.1" "soundfile==0.14.0" "typer==0.29.2" "rich==15.0.0"
  "paho-mqtt==2.2.0"    # edgeemo[device]: the MQTT output of `edgeemo run`
  "matplotlib==3.11.2"  # edgeemo[plots]: `edgeemo run --demo` takes its portrait from matplotlib's sample data
)
SDISTS=("python_speech_features==0.6")   # pure Python, sdist only on PyPI: built into a wheel on the host
DEBS=(
  libc6 libgcc-s1 libstdc++6 gcc-12-base libgomp1 zlib1g libbz2-1.0 liblzma5 libexpat1 libffi8 libssl3
  libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libcrypt1 libnsl2 libtirpc3 libdb5.3
  libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libcom-err2
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
)
QEMU_SRC_VERSION="$(dpkg-query -W -f='${source:Version}' qemu-user 2>/dev/null || true)"

log() { printf '[aarch64_env] %s\n' "$*" >&2; }

ensure_host_tools() {
  local need=()
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  command -v gcc >/dev/null || need+=(gcc)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt-get update -q >/dev/null
  fi
  local src=/etc/apt/sources.list.d/edgeemo-aarch64-src.sources
  if [[ ! -f $src ]]; then
    log "adding deb-src entries ($src) for the qemu source package (plugin header)"
    # Same archives as the machine's own deb entries, source only.
    sed -n 's/^Types: deb$/Types: deb-src/p; /^URIs:/p; /^Suites:/p; /^Components:/p; /^Signed-By:/p; /^$/p' \
      /etc/apt/sources.list.d/debian.sources > "$src"
    apt-get update -q >/dev/null
  fi
  if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    apt-get install -y -q "${need[@]}" >/dev/null
  fi
  QEMU_SRC_VERSION="$(dpkg-query -W -f='${source:Version}' qemu-user)"
}

build_root() {
  local stamp="$ROOT/.edgeemo-debs"
  local want; want="$(printf '%s\n' "${DEBS[@]}")"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then return; fi
  log "downloading arm64 .debs"
  mkdir -p "$CACHE/debs"
  (cd "$CACHE/debs" && apt-get download -q $(printf '%s:arm64 ' "${DEBS[@]}") >/dev/null)
  rm -rf "$ROOT.tmp" && mkdir -p "$ROOT.tmp"
  for d in "$CACHE"/debs/*_arm64.deb; do dpkg -x "$d" "$ROOT.tmp"; done
  printf '%s\n' "$want" > "$ROOT.tmp/.edgeemo-debs"
  rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT"
}

# $SITE is a symlink to site.<hash of the requirement list>, swapped atomically: runs going on keep working.
build_site() {
  local want; want="$(printf '%s\n' "${WHEELS[@]}" "${SDISTS[@]}")"
  local dir; dir="$CACHE/site.$(printf '%s' "$want" | sha256sum | cut -c1-12)"
  if [[ -L $SITE && "$(readlink "$SITE")" == "$dir" && -f $dir/.edgeemo-wheels ]]; then return; fi
  if [[ ! -f $dir/.edgeemo-wheels ]]; then
    log "downloading aarch64 wheels"
    mkdir -p "$CACHE/wheels"
    local plat=(--platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux_2_27_aarch64
                --platform manylinux_2_28_aarch64 --python-version "$PY_VERSION" --implementation cp --only-binary=:all:)
    "$HOST_PY" -m pip download -q "${plat[@]}" -d "$CACHE/wheels" "${WHEELS[@]}"
    "$HOST_PY" -m pip wheel -q --no-deps --no-binary=:all: -w "$CACHE/wheels" "${SDISTS[@]}"
    rm -rf "$dir.tmp"
    "$HOST_PY" -m pip install -q "${plat[@]}" --no-index --find-links "$CACHE/wheels" --target "$dir.tmp" \
      "${WHEELS[@]}" "${SDISTS[@]}"
    printf '%s\n' "$want" > "$dir.tmp/.edgeemo-wheels"
    mv -T "$dir.tmp" "$dir"
  fi
  if [[ -d $SITE && ! -L $SITE ]]; then mv -T "$SITE" "$CACHE/site.old.$$"; fi  # layout of earlier versions
  ln -sfn "$dir" "$SITE.tmp.$$" && mv -T "$SITE.tmp.$$" "$SITE"
}

# The repo's package-dir mapping (edgeemo -> edgeemo/, edgeemo.train -> train/, ...) as a symlink tree pointing at
# the live working tree, checked on every call so files other engineers add to edgeemo/ appear at once. $SHIM is a
# symlink swapped atomically (mv -T), so concurrent runs never see a half-built tree.
refresh_shim() {
  local want=() f
  for f in "$REPO"/edgeemo/*; do [[ $(basename "$f") == __pycache__ ]] || want+=("$(basename "$f")=$f"); done
  for f in train export device; do want+=("$f=$REPO/$f"); done
  local listing; listing="$(printf '%s\n' "${want[@]}")"
  if [[ -L $SHIM && -f $SHIM/.listing && "$(cat "$SHIM/.listing")" == "$listing" ]]; then return; fi
  local new; new="$(mktemp -d "$CACHE/shim.XXXXXX")"
  mkdir -p "$new/edgeemo"
  for f in "${want[@]}"; do ln -s "${f#*=}" "$new/edgeemo/${f%%=*}"; done
  printf '%s\n' "$listing" > "$new/.listing"
  [[ -e $SHIM && ! -L $SHIM ]] && rm -rf "$SHIM"
  ln -sfn "$new" "$SHIM.tmp.$$" && mv -T "$SHIM.tmp.$$" "$SHIM"
}

build_plugin() {
  local hdr_dir="$CACHE/qemu-src/include"
  if [[ ! -f $hdr_dir/qemu/qemu-plugin.h || ! -f $CACHE/qemu-src/.version \
        || "$(cat "$CACHE/qemu-src/.version")" != "$QEMU_SRC_VERSION" ]]; then
    log "fetching qemu-plugin.h from Debian's qemu source package $QEMU_SRC_VERSION"
    rm -rf "$CACHE/qemu-src" && mkdir -p "$CACHE/qemu-src"
    (cd "$CACHE/qemu-src" && apt-get source --download-only -q "qemu=$QEMU_SRC_VERSION" >/dev/null 2>&1)
    local tarball; tarball="$(ls "$CACHE"/qemu-src/qemu_*.orig.tar.*)"
    tar -xf "$tarball" -C "$CACHE/qemu-src" --wildcards '*/include/qemu/qemu-plugin.h'
    mkdir -p "$hdr_dir/qemu" && cp "$CACHE"/qemu-src/qemu-*/include/qemu/qemu-plugin.h "$hdr_dir/qemu/"
    echo "$QEMU_SRC_VERSION" > "$CACHE/qemu-src/.version"
  fi
  local src="$REPO/benchmarks/experiments/aarch64_insn_plugin.c"
  if [[ ! -f $PLUGIN || $src -nt $PLUGIN ]]; then
    log "building $PLUGIN"
    mkdir -p "$(dirname "$PLUGIN")"
    # Built aside and renamed: running qemu processes keep the old file mapped.
    gcc -O2 -Wall -Wextra -shared -fPIC -I "$hdr_dir/qemu" -o "$PLUGIN.tmp.$$" "$src"
    mv "$PLUGIN.tmp.$$" "$PLUGIN"
  fi
}

# onnxruntime's (and XNNPACK's) cpuinfo library reads /proc/cpuinfo and /sys/devices/system/cpu. qemu-user passes the
# host's (x86) files through, and onnxruntime 1.32 then segfaults while importing. qemu -L serves ROOT/path in place
# of /path when it exists, so each CPU profile gets a root (symlinks to the sysroot) with the /proc/cpuinfo and a few
# /sys cpu files of the real board: 4 cores, the board's MIDR (implementer/part) and Features. This also lets cpuinfo
# recognise the microarchitecture as on the device. Other /sys files (caches, topology) still come from the host.
cpu_root() {  # $1 = qemu -cpu name; prints the root to use with -L
  local cpu="$1" part variant rev feats model freq
  case "$cpu" in
    cortex-a72) part=0xd08 variant=0x0 rev=3 freq=1800000 model="Raspberry Pi 4 Model B Rev 1.4"
                feats="fp asimd evtstrm crc32 cpuid" ;;
    cortex-a76) part=0xd0b variant=0x4 rev=1 freq=2400000 model="Raspberry Pi 5 Model B Rev 1.0"
                feats="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
    cortex-a57) part=0xd07 variant=0x1 rev=1 freq=1479000 model="NVIDIA Jetson Nano Developer Kit"
                feats="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" ;;
    *) echo "aarch64_env: no board profile for -cpu $cpu (cortex-a72, cortex-a76, cortex-a57)" >&2; exit 2 ;;
  esac
  model="qemu-aarch64 -cpu $cpu (emulated, $model CPU profile)"
  local r="$CACHE/root-$cpu" stamp="$part $variant $rev $feats / $model"
  if [[ ! -f $r/.edgeemo-profile || "$(cat "$r/.edgeemo-profile")" != "$stamp" ]]; then
    # Updated in place (new files renamed over old ones): runs of this profile may be going on.
    mkdir -p "$r/proc" "$r/sys/devices/system/cpu"
    local e i f
    for e in "$ROOT"/*; do [[ -e $r/$(basename "$e") ]] || ln -s "$e" "$r/$(basename "$e")"; done
    : > "$r/proc/cpuinfo.tmp"
    for i in 0 1 2 3; do
      printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\n' \
        "$i" "$feats" >> "$r/proc/cpuinfo.tmp"
      printf 'CPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$rev" >> "$r/proc/cpuinfo.tmp"
      mkdir -p "$r/sys/devices/system/cpu/cpu$i/cpufreq"
      echo "$freq" > "$r/sys/devices/system/cpu/cpu$i/cpufreq/cpuinfo_max_freq"
      echo 600000 > "$r/sys/devices/system/cpu/cpu$i/cpufreq/cpuinfo_min_freq"
    done
    printf 'Model\t\t: %s\n' "$model" >> "$r/proc/cpuinfo.tmp"
    mv "$r/proc/cpuinfo.tmp" "$r/proc/cpuinfo"
    for f in possible present online; do echo 0-3 > "$r/sys/devices/system/cpu/$f"; done
    echo "$stamp" > "$r/.edgeemo-profile"
  fi
  echo "$r"
}

build() {
  ensure_host_tools
  build_root
  build_site
  build_plugin
  refresh_shim
}

# qemu-aarch64 environment: only the sysroot's stdlib, the aarch64 site dir and the shim are on sys.path
# (PYTHONSAFEPATH: not the current directory, where the repo's own edgeemo/ would shadow the shim).
qemu_cmd() {
  local cpu="$1"; shift
  local root; root="$(cpu_root "$cpu")"
  QEMU_CMD=(qemu-aarch64 -L "$root" -cpu "$cpu"
    -E "PYTHONHOME=$ROOT/usr" -E "PYTHONPATH=$SHIM:$SITE" -E PYTHONNOUSERSITE=1 -E PYTHONHASHSEED=0
    -E PYTHONDONTWRITEBYTECODE=1 -E PYTHONSAFEPATH=1 -E "LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu"
    -E OMP_NUM_THREADS=1 -E OPENBLAS_NUM_THREADS=1 "$@")
}

parse_cpu() {  # sets CPU and ARGS from "[-cpu C] rest..."
  CPU="${EDGEEMO_AARCH64_CPU:-cortex-a72}"
  if [[ ${1:-} == -cpu ]]; then CPU="$2"; shift 2; fi
  ARGS=("$@")
}

cmd="${1:-build}"; shift || true
case "$cmd" in
  build) build; log "ready: ROOT=$ROOT SITE=$SITE PLUGIN=$PLUGIN" ;;
  python|edgeemo)
    refresh_shim
    parse_cpu "$@"
    if [[ $cmd == python ]]; then
      qemu_cmd "$CPU" "$ROOT/usr/bin/python$PY_VERSION" "${ARGS[@]}"
    else
      qemu_cmd "$CPU" "$ROOT/usr/bin/python$PY_VERSION" -c \
        'import sys; sys.argv[0] = "edgeemo"; from edgeemo.cli import app; app()' "${ARGS[@]}"
    fi
    exec "${QEMU_CMD[0]}" ${EDGEEMO_QEMU_EXTRA:-} "${QEMU_CMD[@]:1}" ;;
  count)
    out="$1"; shift
    refresh_shim
    parse_cpu "$@"
    qemu_cmd "$CPU" "$ROOT/usr/bin/python$PY_VERSION" "${ARGS[@]}"
    # Same addresses every run: no ASLR (setarch -R) and a fixed, minimal environment (qemu hands its own
    # environment to the guest, where its size moves the stack). Alignment-dependent paths (memcpy heads,
    # allocator) then take the same branches, and repeated runs give the same counts.
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 setarch "$(uname -m)" -R \
      "${QEMU_CMD[0]}" -plugin "$PLUGIN,out=$out" "${QEMU_CMD[@]:1}" ;;
  info)
    echo "cache=$CACHE"; echo "root=$ROOT"; echo "site=$SITE"; echo "plugin=$PLUGIN"
    qemu-aarch64 --version | head -1
    echo "qemu-user package: $QEMU_SRC_VERSION"
    dpkg-deb -f "$(ls "$CACHE"/debs/python3.11-minimal_*_arm64.deb)" Package Version | tr '\n' ' '; echo
    ls "$CACHE/wheels" ;;
  *) echo "usage: $0 {build|python|edgeemo|count|info} ..." >&2; exit 2 ;;
esac
