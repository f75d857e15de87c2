# Sourced by scripts/control-plane.sh and scripts/node.sh: the Go module that builds
# Kubernetes commands from k8s.io/kubernetes, which pins its staging modules (k8s.io/api,
# k8s.io/client-go, ...) at v0.0.0, so the module replaces each with the published v0.Y.Z.
#
#   k8s_module NAME VERSION CMD...   in the current directory: go.mod and tools.go importing
#                                    k8s.io/kubernetes/cmd/<CMD> for each CMD, then `go mod tidy`
k8s_module() {
  local name=$1 version=$2 cmd gomod
  shift 2
  local staging_version="v0.${version#v1.}"
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "module $name"; echo; echo "go 1.24.0"; echo
    echo "require k8s.io/kubernetes $version"; echo
    echo "replace ("
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } > tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
}
