#!/usr/bin/env bash
# Screenshot the HTML report as a laptop shows it (headless Chromium, 1280 px wide), to look at before
# publishing it. Usage: bash scripts/screenshot_report.sh [reports/index.html] [out.png] [height]
set -euo pipefail
page="${1:-reports/index.html}"
out="${2:-reports/index-1280.png}"
height="${3:-3000}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  echo "no Chromium found: apt-get install chromium" >&2
  exit 2
fi
if [ ! -f "$page" ]; then
  echo "$page: not found; run \`dvc repro report\` first" >&2
  exit 2
fi
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="1280,$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$page")" 2>/dev/null
echo "$out: $page at 1280x$height"
