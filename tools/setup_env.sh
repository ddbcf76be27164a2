#!/usr/bin/env bash
# Set up everything deepocc needs on a fresh machine: Debian's Fashion-MNIST (where apt can be used),
# a virtual environment in .venv, PyTorch, and deepocc with its dev tools. Idempotent: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

fmnist=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [[ ! -e $fmnist ]] && command -v apt-get >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]]; then sudo=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi
  if [[ $sudo != none ]]; then
    echo "setup: installing Debian's dataset-fashion-mnist"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist; } >/dev/null \
      || echo "setup: warning: apt-get could not install dataset-fashion-mnist; Fashion-MNIST tables will say 'not available'"
  else
    echo "setup: warning: no root or sudo for apt-get; install dataset-fashion-mnist yourself or set \$DEEPOCC_DATA"
  fi
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
