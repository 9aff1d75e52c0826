#!/bin/sh
# lifeboat: the application in /usr/lib/lifeboat on the Node.js runtime shipped with it, so the
# system's Node.js (old, or absent) does not matter. LIFEBOAT_COMMAND tells lifeboat how it was
# started (the apt/dnf hooks it installs call this wrapper).
LIFEBOAT_COMMAND=/usr/bin/lifeboat
export LIFEBOAT_COMMAND
exec /usr/lib/lifeboat/node /usr/lib/lifeboat/dist/cli/start.js "$@"
