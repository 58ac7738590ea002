#!/usr/bin/env bash
# Rebuild configs/plots/offline.html: DVC's plot page with Vega, Vega-Lite and Vega-Embed inlined,
# so `dvc plots show` renders with no network (DVC's own page loads them from a CDN). .dvc/config
# points `plots.html_template` at the result, which is committed: only rebuilding needs npm.
# The versions are the ones DVC's page asks for (dvc_render/vega.py), so its templates render as
# they do online. All three are BSD-3-Clause.
set -euo pipefail
cd "$(dirname "$0")"
PACKAGES=(vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for package in "${PACKAGES[@]}"; do
  name=${package%@*}
  (cd "$work" && npm pack --silent "$package" >/dev/null)
  mkdir -p "$work/$name"
  tar xzf "$work/$name"-*.tgz -C "$work/$name" --strip-components=1
done
{
  printf '<!DOCTYPE html>\n<html>\n<head>\n  {refresh_tag}\n  <title>DVC Plot</title>\n'
  printf '  <!-- built by configs/plots/build.sh: %s, inlined (BSD-3-Clause) -->\n' "${PACKAGES[*]}"
  for package in "${PACKAGES[@]}"; do
    name=${package%@*}
    printf '  <script type="text/javascript">\n'
    cat "$work/$name/build/$name.min.js"
    printf '\n  </script>\n'
  done
  printf '  <style>\n    table {\n      border-spacing: 15px;\n    }\n  </style>\n</head>\n'
  printf '<body>\n  {plot_divs}\n</body>\n</html>\n'
} > offline.html.tmp
mv offline.html.tmp offline.html
echo "wrote $(pwd)/offline.html ($(wc -c < offline.html) bytes)"
