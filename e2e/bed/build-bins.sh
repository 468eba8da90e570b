#!/usr/bin/env bash
# Builds the test bed's binaries from the Go module proxy into a version-keyed cache dir.
# Usage: build-bins.sh <component> <outdir>   (component: k8s | etcd | kwok | flagger | helm | influxdb)
# flagger (the real Flagger, for the benchmark and the take-over test) and helm (e2e/test_helm.py)
# are built on demand only.
# Each component is built only when its outdir lacks a .complete marker. Nothing here is committed.
set -euo pipefail
comp=$1; out=$2
K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
FLAGGER_VERSION=${FLAGGER_VERSION:-v1.44.0}
HELM_VERSION=${HELM_VERSION:-v4.3.2}
INFLUXDB_VERSION=${INFLUXDB_VERSION:-v1.8.10}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
[ -f "$out/.complete" ] && exit 0
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/canaryd-bed-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
case "$comp" in
k8s)
  staging="v0.${K8S_VERSION#v1.}"
  go mod init local.test/k8sbins >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="$m=$m@$staging"
  done
  grep '^godebug' "$gomod" >> go.mod || true
  cmds="kube-apiserver kube-controller-manager kube-scheduler kubectl"
  pkgs=""; for c in $cmds; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  # the imports must exist before `go get`/`tidy`, or tidy drops k8s.io/kubernetes and picks @latest
  { echo '//go:build tools'; echo 'package tools'; echo 'import ('
    for p in $pkgs; do echo "	_ \"$p\""; done; echo ')'; } > tools.go
  go get "k8s.io/kubernetes@$K8S_VERSION"
  go mod tidy -e
  grep -q "k8s.io/kubernetes $K8S_VERSION" go.mod || { echo "k8s: go.mod does not pin k8s.io/kubernetes $K8S_VERSION" >&2; exit 1; }
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$ld" -o "$out/" $pkgs
  "$out/kube-apiserver" --version
  ;;
etcd)
  go mod init local.test/etcdbin >/dev/null 2>&1
  cat > tools.go <<TOOLS
//go:build tools
package tools
import _ "go.etcd.io/etcd/server/v3"
TOOLS
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  "$out/etcd" --version | head -1
  ;;
kwok)
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # kwok v0.8 ships no built-in stages: keep the module's stage dir path next to the binary
  echo "$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION" > "$out/kwok-module-dir"
  ;;
flagger)
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION"
  # Flagger's CRDs (canaries, metrictemplates, alertproviders) from the same module, for the bed
  cp "$(go env GOMODCACHE)/github.com/fluxcd/flagger@$FLAGGER_VERSION/artifacts/flagger/crd.yaml" "$out/crd.yaml"
  "$out/flagger" -version 2>&1 | head -1 || true
  ;;
helm)
  # the version string is stamped by ldflags in Helm's own release builds: do the same
  GOBIN="$out" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  "$out/helm" version --short | grep -qx "$HELM_VERSION" || { echo "helm: not $HELM_VERSION" >&2; exit 1; }
  ;;
influxdb)
  # InfluxDB 1.8 with Flux (flux-enabled = true answers /api/v2/query) for e2e/test_provider_influxdb.py;
  # Debian's influxdb (1.6) has no Flux
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION"
  "$out/influxd" version | head -1
  ;;
*) echo "unknown component $comp" >&2; exit 2;;
esac
touch "$out/.complete"
