# Shared by scripts/serve and scripts/test: create .venv if missing and install the project into it.
# Usage: . scripts/_setup.sh [extra]   (extra = "dev" for the test tools)

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
EXTRA="${1:-}"

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi

# Reinstall only when pyproject.toml changed since the last install into this venv.
stamp=".venv/.rimay-installed${EXTRA:+-$EXTRA}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing rimay${EXTRA:+[$EXTRA]} into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${EXTRA:+[$EXTRA]}"
  touch "$stamp"
fi

# espeak-ng and lame turn prompts into audio offline; ffmpeg converts staff's voice answers to MP3.
# Install them when we can (root on Debian).
need_audio_tools() {
  command -v espeak-ng >/dev/null 2>&1 && command -v lame >/dev/null 2>&1 && command -v ffmpeg >/dev/null 2>&1
}
if ! need_audio_tools; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing espeak-ng, lame and ffmpeg with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng lame ffmpeg >/dev/null
  else
    echo "!! espeak-ng, lame and ffmpeg are needed for audio: sudo apt-get install espeak-ng lame ffmpeg" >&2
  fi
fi
