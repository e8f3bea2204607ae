# shellcheck shell=sh
# Any CI (or a laptop): scan the current repository with the container image, read-only, no network.
#   sh docker-run.sh
# Exit 0 pass, 1 policy violated, 2 the gate could not run. (No #! line and no exec bit: in a
# model repository modelgate reports executable scripts, MG007, and this one is only an example.)
exec docker run --rm --network none \
  --user "$(id -u):$(id -g)" \
  -v "$PWD:/work:ro" -v "$PWD/reports:/reports" -w /work \
  ghcr.io/modelgate/modelgate:0.1.0 \
  scan . --sarif /reports/modelgate.sarif --sbom /reports/modelgate.cdx.json --json /reports/modelgate.json
