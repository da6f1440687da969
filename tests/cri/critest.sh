#!/usr/bin/env bash
# tests/cri/critest.sh — the upstream CRI validation suite (critest, from kubernetes-sigs/
# cri-tools) against a frakti daemon of its own, with the test images served by Debian's
# docker-registry on loopback, so it runs offline.
#
#   tests/cri/critest.sh                       (needs /dev/kvm and root; critest on PATH)
#   tools/kvmbox -- tests/cri/critest.sh       (on a host without /dev/kvm)
#   CRITEST_FOCUS=regex CRITEST_SKIP=regex     narrow or widen the run (ginkgo regexes)
#
# critest is not a Debian package: install a release binary (critest-<v>-linux-amd64.tar.gz
# from https://github.com/kubernetes-sigs/cri-tools/releases) into /usr/local/bin. Without it
# this script says so and exits 77, which ctest reports as skipped.
#
# The test images: critest runs its containers from
# registry.k8s.io/e2e-test-images/busybox:1.29-2 (its default test image). This script builds
# a busybox image locally (tools/make-busybox-image, from Debian's busybox-static), pushes it
# to the loopback registry under that name (skopeo), and points frakti's registry mirrors for
# registry.k8s.io, docker.io and gcr.io at that registry (--registry-config). To do the same by
# hand:
#   tools/make-busybox-image /tmp/busybox
#   skopeo copy --dest-tls-verify=false oci:/tmp/busybox:latest \
#     docker://127.0.0.1:5000/e2e-test-images/busybox:1.29-2
# Tests that need other images (nginx web server, image-pull tests by digest) or features frakti
# does not have yet (streaming exec/attach/port-forward, CNI networking, host mounts into VM
# pods) are skipped by default; CRITEST_SKIP replaces the default list.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FRAKTI_BUILD_DIR:-$top/build}
if ! command -v critest >/dev/null; then
  echo "critest: not installed, skipped (install critest from the cri-tools releases into /usr/local/bin)"
  exit 77
fi
for tool in docker-registry skopeo; do
  command -v $tool >/dev/null || { echo "critest.sh: $tool is missing (run tools/setup)" >&2; exit 1; }
done
[[ -c /dev/kvm ]] || { echo "critest.sh: no /dev/kvm (run under tools/kvmbox)" >&2; exit 1; }

work=$(mktemp -d /tmp/frakti-critest.XXXXXX)
state=$(mktemp -d /tmp/fc-XXXXXX)  # short: VM socket paths live under it
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -9 -f "frakti-shim $state" 2>/dev/null || true
  rm -rf "$work" "$state"
}
trap cleanup EXIT

# --- the registry on a free loopback port
port=
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (: >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then port=$p; break; fi
done
[[ -n $port ]] || { echo "critest.sh: no free loopback port" >&2; exit 1; }
cat >"$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

layout=/var/lib/frakti/bundled/busybox
if [[ ! -f $layout/index.json ]]; then
  layout=$work/busybox-layout
  "$top/tools/make-busybox-image" "$layout" >/dev/null
fi
tag=$(grep -o '"org.opencontainers.image.ref.name":"[^"]*"' "$layout/index.json" | head -1 | cut -d'"' -f4)
for name in e2e-test-images/busybox:1.29-2 library/busybox:latest; do
  skopeo copy -q --dest-tls-verify=false "oci:$layout:${tag:-latest}" "docker://127.0.0.1:$port/$name"
done

cat >"$work/registries.json" <<JSON
{ "registries": {
    "registry.k8s.io": { "mirrors": ["http://127.0.0.1:$port"] },
    "docker.io": { "mirrors": ["http://127.0.0.1:$port"] },
    "gcr.io": { "mirrors": ["http://127.0.0.1:$port"] } } }
JSON
cat >"$work/images.yaml" <<YAML
defaultTestContainerImage: registry.k8s.io/e2e-test-images/busybox:1.29-2
webServerTestImage: registry.k8s.io/e2e-test-images/nginx:1.14-2
YAML

sock=$work/frakti.sock
"$build/bin/frakti" --listen "$sock" --root-directory "$work/root" --state-directory "$state" \
  --registry-config "$work/registries.json" --boot-timeout 300 >"$work/frakti.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || { echo "critest.sh: frakti did not start:" >&2; cat "$work/frakti.log" >&2; exit 1; }

default_skip='[Ss]treaming|[Pp]ort ?[Ff]orward|[Aa]ttach|[Nn]etwork|DNS|[Pp]ort mapping|[Mm]ount|[Ii]mage ?[Mm]anager|SELinux|AppArmor|[Ss]eccomp|[Uu]ser ?[Nn]amespace|[Cc]heckpoint|[Ee]vents|[Mm]etrics|[Ww]eb ?[Ss]erver'
status=0
critest --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" \
  --test-images-file "$work/images.yaml" \
  --ginkgo.focus "${CRITEST_FOCUS:-.}" --ginkgo.skip "${CRITEST_SKIP:-$default_skip}" || status=$?
if ((status)); then
  echo "--- frakti log (last 60 lines)"
  tail -60 "$work/frakti.log"
fi
exit $status
