#!/usr/bin/env bash
# Set up everything deepocc needs on a fresh machine: Debian's Fashion-MNIST and Chromium (where apt can be used),
# a virtual environment in .venv, PyTorch, and deepocc with its dev tools. Idempotent: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Debian packages, where apt-get can be used (root, or sudo without a password): Fashion-MNIST for the tables, and
# Chromium with its driver for the docs' browser test (tests/test_docs.py). Checked on every run, before the stamp.
sudo=unknown apt_updated=no
apt_install() {  # apt_install "what is missing without it" PACKAGE...
  local why=$1; shift
  if [[ $sudo == unknown ]]; then
    if [[ $(id -u) == 0 ]]; then sudo=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi
  fi
  if [[ $sudo == none ]]; then echo "setup: warning: no root or sudo for apt-get; install $* yourself ($why)"; return; fi
  echo "setup: installing Debian's $*"
  if [[ $apt_updated == no ]]; then $sudo apt-get update -qq >/dev/null 2>&1 && apt_updated=yes; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || echo "setup: warning: apt-get could not install $*; $why"
}
fmnist=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if command -v apt-get >/dev/null 2>&1; then
  [[ -e $fmnist ]] || apt_install "Fashion-MNIST tables will say 'not available'; or set \$DEEPOCC_DATA" dataset-fashion-mnist
  [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] \
    || apt_install "the docs browser test (tests/test_docs.py) skips, or fails under CI" chromium chromium-driver
elif [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  echo "setup: warning: no apt-get; install Chromium and chromedriver as /usr/bin/chromium and /usr/bin/chromedriver for tests/test_docs.py"
fi

stamp=.venv/.deepocc-setup
want=$(cat settings.ini setup.py tools/setup_env.sh | sha1sum | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && $(cat $stamp) == "$want" ]]; then exit 0; fi

[[ -x .venv/bin/python ]] || { echo "setup: creating .venv"; $PY -m venv .venv; }
echo "setup: installing PyTorch and deepocc into .venv (a few minutes the first time)"
log=.venv/setup.log
run() { "$@" >>"$log" 2>&1 || { cat "$log"; echo "setup: failed: $*"; exit 1; }; }
: > "$log"
# PyTorch pinned to the release this project is tested with (the CPU-only 2.13 wheel lacks a matching torchvision)
run .venv/bin/python -m pip install 'torch==2.14.1' 'torchvision==0.29.1'
run .venv/bin/python -m pip install -e '.[dev,ray]'
run .venv/bin/python -m pip check
echo "$want" > $stamp
echo "setup: done"
