#!/bin/sh
# The image's venv: /opt/dropscribe with dropscribe and the extras in $1.
# From the lock file $2 when the checkout has it (exact versions, every file's hash
# checked), else from pyproject.toml's ranges. Pip's index is PyPI unless PIP_NO_INDEX /
# PIP_FIND_LINKS / PIP_INDEX_URL say otherwise (CI: wheels made on the host).
set -eu
extras=$1 lock=$2
python3 -m venv /opt/dropscribe
pip="/opt/dropscribe/bin/pip --no-cache-dir --disable-pip-version-check"
if [ -f "$lock" ]; then
    echo "dropscribe image: installing from $lock"
    $pip install --require-hashes -r "$lock"
    $pip install --no-deps .
else
    echo "dropscribe image: no $lock; installing from pyproject.toml"
    $pip install ".[$extras]"
fi
# Debugging symbols some wheels ship (CTranslate2's 65 MB module is 3 MB without): 93 MB.
find /opt/dropscribe -name '*.so*' -type f -exec strip --strip-debug {} +
# What only installing needs goes: 20 MB, and nothing in the image runs pip.
$pip uninstall -q -y pip setuptools wheel 2>/dev/null || /opt/dropscribe/bin/python -m pip uninstall -q -y pip setuptools
find /opt/dropscribe -depth -name '__pycache__' -path '*/site-packages/pip*' -exec rm -rf {} + 2>/dev/null || true
