#!/usr/bin/env bash
# Makes a small OCI image without Docker and pushes it with skopeo, to try Signet locally:
#
#   examples/make-test-image.sh                                   # 127.0.0.1:5000/team-a/app:v1
#   examples/make-test-image.sh 127.0.0.1:5000/team-b/tool:1.0
#   examples/make-test-image.sh --multi-arch 127.0.0.1:5000/team-a/multi:v1   # an image index
#
# The image is an OCI image layout in a temporary directory: one layer holding one small text
# file (different at every run, so every push is a new digest), its config and manifest; with
# --multi-arch, a linux/amd64 and a linux/arm64 image under an OCI image index. skopeo copies it to
# the registry over plain HTTP (--dest-tls-verify=false: for local registries only) and the
# pushed digest is printed. Needs bash, tar, gzip, sha256sum (or shasum) and skopeo.
set -euo pipefail

multi_arch=false
if [[ "${1:-}" == "--multi-arch" ]]; then
  multi_arch=true
  shift
fi
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" || $# -gt 1 ]]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  [[ $# -gt 1 ]] && exit 2
  exit 0
fi
ref="${1:-127.0.0.1:5000/team-a/app:v1}"

command -v skopeo >/dev/null || {
  echo "make-test-image: skopeo is missing (apt-get install -y skopeo, brew install skopeo)" >&2
  exit 2
}

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"

# Stores a file as a blob; prints its descriptor (JSON) with the given media type.
blob() {
  local file="$1" media_type="$2" digest size
  digest="$(sha256 "$file")"
  size="$(wc -c <"$file" | tr -d ' ')"
  cp "$file" "$layout/blobs/sha256/$digest"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$media_type" "$digest" "$size"
}

# Writes one image for an architecture; prints its manifest's descriptor.
image() {
  local arch="$1" dir="$work/$1"
  mkdir -p "$dir/rootfs"
  printf 'hello from signet, %s, %s %s\n' "$arch" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$RANDOM$RANDOM" >"$dir/rootfs/hello.txt"
  tar -cf "$dir/layer.tar" -C "$dir/rootfs" hello.txt
  gzip -n -c "$dir/layer.tar" >"$dir/layer.tar.gz"
  local layer diff_id config
  layer="$(blob "$dir/layer.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip)"
  diff_id="sha256:$(sha256 "$dir/layer.tar")"
  printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$arch" "$diff_id" >"$dir/config.json"
  config="$(blob "$dir/config.json" application/vnd.oci.image.config.v1+json)"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
    "$config" "$layer" >"$dir/manifest.json"
  blob "$dir/manifest.json" application/vnd.oci.image.manifest.v1+json
}

if [[ "$multi_arch" == true ]]; then
  amd64="$(image amd64)"
  arm64="$(image arm64)"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
    "${amd64%\}},\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}" \
    "${arm64%\}},\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}" >"$work/index-blob.json"
  top="$(blob "$work/index-blob.json" application/vnd.oci.image.index.v1+json)"
else
  top="$(image amd64)"
fi
# The layout's own index names the image (or index) by the tag skopeo copies.
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' \
  "${top%\}},\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}" >"$layout/index.json"

# --insecure-policy: no dependence on the machine's /etc/containers/policy.json.
skopeo --insecure-policy copy --quiet --all --preserve-digests --dest-tls-verify=false \
  --digestfile "$work/digest" "oci:$layout:latest" "docker://$ref"
echo "pushed $ref@$(cat "$work/digest")"
