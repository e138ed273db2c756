#!/bin/sh
# The image's entrypoint.
#  - With arguments, run them: the Ray cluster launcher starts the container with `bash` and then
#    runs `ray start …` inside it (KubeRay sets the pod's command itself and bypasses this file).
#  - Without: a one-container service, `serve run` of the Serve config next to this script, on a
#    Ray started for it (RAY_ADDRESS=host:port joins an existing cluster instead).
set -eu
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
exec serve run "$(dirname "$0")/serve_config.yaml"
