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

# `tools/setup_env.sh --lock` (make lock): set up a fresh venv from settings.ini's ranges alone and write the exact versions
# it got to requirements.lock, which every other setup then installs with as pip constraints.
venv=.venv lock=requirements.lock
if [[ ${1:-} == --lock ]]; then venv=.venv-lock; rm -rf "$venv"; fi

stamp=$venv/.deepocc-setup
want=$(cat settings.ini setup.py tools/setup_env.sh $lock 2>/dev/null | sha1sum | cut -d' ' -f1)
if [[ $venv == .venv && -x .venv/bin/python && -f $stamp && $(cat $stamp) == "$want" ]]; then exit 0; fi

[[ -x $venv/bin/python ]] || { echo "setup: creating $venv"; $PY -m venv $venv; }
# the lock was made on one platform (its second line): elsewhere the ranges in settings.ini decide, with a warning
constraints=()
if [[ $venv == .venv && -f $lock ]]; then
  here="python $($venv/bin/python -c 'import sys, platform; print("%d.%d" % sys.version_info[:2], platform.machine())')"
  if grep -q "platform: $here\$" $lock; then constraints=(-c $lock)
  else echo "setup: warning: $lock was made for '$(sed -n 's/.*platform: //p' $lock)', this is '$here': installing from settings.ini's ranges"; fi
fi
echo "setup: installing PyTorch and deepocc into $venv${constraints:+ with the exact versions of $lock} (a few minutes the first time)"
log=$venv/setup.log
run() { "$@" >>"$log" 2>&1 || { cat "$log"; echo "setup: failed: $*"; exit 1; }; }
: > "$log"
# PyTorch pinned to the release this project is tested with (the CPU-only 2.13 wheel lacks a matching torchvision)
run $venv/bin/python -m pip install 'torch==2.14.1' 'torchvision==0.29.1' "${constraints[@]}"
run $venv/bin/python -m pip install -e '.[dev,ray]' "${constraints[@]}"
run $venv/bin/python -m pip check
if [[ $venv == .venv-lock ]]; then
  { echo "# Exact versions deepocc is set up with (tools/setup_env.sh installs with this file as pip constraints)."
    echo "# Made by \`make lock\` from settings.ini's ranges in a fresh venv; refresh it there. platform: python $($venv/bin/python -c 'import sys, platform; print("%d.%d" % sys.version_info[:2], platform.machine())')"
    $venv/bin/python -m pip freeze --exclude-editable | grep -v '^deepocc'; } > $lock.tmp && mv $lock.tmp $lock
  rm -rf "$venv"; echo "setup: wrote $lock ($(grep -vc '^#' $lock) packages); run make setup to install it"; exit 0
fi
echo "$want" > $stamp
echo "setup: done"
