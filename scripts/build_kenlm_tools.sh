#!/usr/bin/env bash
# Build KenLM's `lmplz` and `build_binary` (needed by `rpv2 models build-lm`) from the KenLM source
# distribution on PyPI. Debian has no kenlm package and the PyPI wheels carry only the Python query
# module, so the C++ tools are compiled here with cmake and Debian's boost dev packages.
#
# Idempotent: if both tools already run from the install dir (or PATH), nothing is done.
# Install dir: $RPV2_KENLM_BIN if set, else /usr/local/bin as root, else ~/.local/bin.
# Environment: KENLM_VERSION (default 0.2.0), KENLM_JOBS (default 2), RPV2_KENLM_SKIP_APT=1 to skip apt.
set -euo pipefail

KENLM_VERSION="${KENLM_VERSION:-0.2.0}"
JOBS="${KENLM_JOBS:-2}"
PYTHON="${PYTHON:-python3}"

if [[ -n "${RPV2_KENLM_BIN:-}" ]]; then
    BIN_DIR="$RPV2_KENLM_BIN"
elif [[ "$(id -u)" == "0" ]]; then
    BIN_DIR=/usr/local/bin
else
    BIN_DIR="$HOME/.local/bin"
fi

log() { echo "[build_kenlm_tools] $*" >&2; }

# A tool "works" when it runs and prints its usage; both exit non-zero on bad options, so we look
# at the output instead of the exit code.
tool_works() {
    local exe="$1"
    [[ -x "$exe" ]] || return 1
    local out
    out="$("$exe" --help 2>&1 || true)"  # captured first: `| grep -q` would SIGPIPE it under pipefail
    grep -qiE "usage|options|kenlm" <<<"$out"
}

if tool_works "$BIN_DIR/lmplz" && tool_works "$BIN_DIR/build_binary"; then
    log "lmplz and build_binary already installed in $BIN_DIR; nothing to do"
    echo "$BIN_DIR"
    exit 0
fi

# --- Debian build dependencies ---------------------------------------------------------------
APT_PACKAGES=(build-essential cmake libboost-program-options-dev libboost-system-dev
              libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
if [[ "${RPV2_KENLM_SKIP_APT:-0}" != "1" ]]; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if (( ${#missing[@]} )); then
        SUDO=""
        [[ "$(id -u)" == "0" ]] || SUDO="sudo"
        log "installing Debian packages: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi

# --- source: the KenLM sdist on PyPI (it carries the whole C++ tree, lm/builder included) -----
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kenlm-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log "downloading kenlm==$KENLM_VERSION source distribution from PyPI"
# --no-binary kenlm (not :all:) so that the build backend's own requirements (cmake, setuptools)
# come as wheels; pip only prepares metadata, it does not compile anything here.
for attempt in 1 2 3; do
    "$PYTHON" -m pip download --quiet --no-deps --no-binary kenlm -d "$WORK" "kenlm==$KENLM_VERSION" && break
    (( attempt < 3 )) || { log "pip download of kenlm==$KENLM_VERSION failed"; exit 1; }
    log "pip download failed (attempt $attempt); retrying"; sleep $(( attempt * 5 ))
done
tar -xzf "$WORK"/kenlm-*.tar.gz -C "$WORK"
SRC="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kenlm-*' | head -n1)"
[[ -f "$SRC/lm/builder/lmplz_main.cc" ]] || { log "sdist has no lm/builder: cannot build lmplz"; exit 1; }

# --- build only the two targets we need ------------------------------------------------------
log "building lmplz and build_binary with cmake (-j$JOBS)"
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
      -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF >"$WORK/cmake.log" 2>&1 \
    || { cat "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$SRC/build" --target lmplz build_binary -j "$JOBS" >"$WORK/make.log" 2>&1 \
    || { tail -n 60 "$WORK/make.log" >&2; exit 1; }

mkdir -p "$BIN_DIR"
install -m 0755 "$SRC/build/bin/lmplz" "$SRC/build/bin/build_binary" "$BIN_DIR/"
tool_works "$BIN_DIR/lmplz" && tool_works "$BIN_DIR/build_binary" \
    || { log "built tools do not run"; exit 1; }
case ":$PATH:" in
    *":$BIN_DIR:"*) ;;
    *) log "note: $BIN_DIR is not on PATH; add it, or set RPV2_KENLM_BIN=$BIN_DIR for rpv2" ;;
esac
log "installed lmplz and build_binary into $BIN_DIR"
echo "$BIN_DIR"
