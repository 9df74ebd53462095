#!/bin/sh
# Installed by berth (examples/everything.yaml): exits 0 when nginx answers.
exec curl --silent --fail --max-time 5 --output /dev/null http://127.0.0.1/
