#!/usr/bin/env bash
# Download and unpack COCO 2014 train (82,783 photos) for `fast-nst train --data`.
# Usage: bash data/get_coco.sh [DEST]   (default: data/coco next to this script)
set -euo pipefail
dest="${1:-$(dirname "$0")/coco}"
url="http://images.cocodataset.org/zips/train2014.zip"
mkdir -p "$dest"
cd "$dest"
for tool in curl unzip; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (e.g. apt-get install $tool)" >&2; exit 1; }
done
if [ ! -d train2014 ] || [ "$(find train2014 -name '*.jpg' | wc -l)" -lt 82783 ]; then
  echo "downloading $url (13 GB; run again to resume)"
  curl --fail --location --continue-at - --output train2014.zip "$url"
  echo "unpacking"
  unzip -q -n train2014.zip
fi
count=$(find train2014 -name '*.jpg' | wc -l)
[ "$count" -eq 82783 ] || { echo "error: expected 82783 photos in $dest/train2014, found $count" >&2; exit 1; }
echo "ok: $count photos in $dest/train2014"
if [ -f train2014.zip ] && [ -t 0 ]; then
  read -r -p "delete train2014.zip (13 GB)? [y/N] " answer
  [ "$answer" = y ] && rm train2014.zip
fi
echo "train with: fast-nst train --style PAINTING --data $dest/train2014"
