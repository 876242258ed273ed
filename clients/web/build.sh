#!/usr/bin/env bash
# Build the web form's assets and check the 2G budget.
#   npm ci + npm run build -> dist/form.js, dist/form.css (committed; the
#   gateway embeds them without needing npm). Then: gzip -9 of form.js +
#   form.css + the largest rendered template must be <= 50 KB.
set -euo pipefail
cd "$(dirname "$0")"

npm ci --no-audit --no-fund
npm run build

BUDGET=51200  # 50 KB (KiB)
gz() { gzip -9 -n -c | wc -c; }
js=$(gz < dist/form.js)
css=$(gz < dist/form.css)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
largest=0; largest_name=""
for t in templates/*.html; do
  for l in i18n/*.json; do
    lang=$(basename "$l" .json)
    node tools/render.mjs "$t" "$lang" > "$tmp/page.html"
    n=$(gz < "$tmp/page.html")
    if [ "$n" -gt "$largest" ]; then largest=$n; largest_name="$(basename "$t") ($lang)"; fi
  done
done
total=$((js + css + largest))
echo "budget (gzip -9): form.js ${js} + form.css ${css} + ${largest_name} ${largest} = ${total} bytes of ${BUDGET}"
if [ "$total" -gt "$BUDGET" ]; then
  echo "web form over budget by $((total - BUDGET)) bytes" >&2
  exit 1
fi
