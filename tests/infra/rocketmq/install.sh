#!/bin/sh
# Fills lib/ with the RocketMQ name server, broker and admin-tool jars that the
# Go helpers in tests/infra run on the local JDK (there is no Docker on the test
# machines). Idempotent: lib/.installed records the sha256 of pom.xml, so a run
# with an unchanged pom and a complete lib/ does nothing, and an edited pom or
# an interrupted download triggers a clean re-copy.
set -eu

cd "$(dirname "$0")"

marker=lib/.installed
want=$(sha256sum pom.xml | cut -d' ' -f1)

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
	exit 0
fi

command -v mvn >/dev/null 2>&1 || { echo "install.sh: mvn not found (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "install.sh: java not found (JDK 17 needed)" >&2; exit 1; }

# A stale or partial lib/ could mix versions on the classpath; start over.
rm -rf lib
mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=lib

for jar in rocketmq-namesrv-5.3.3.jar rocketmq-broker-5.3.3.jar rocketmq-tools-5.3.3.jar; do
	[ -f "lib/$jar" ] || { echo "install.sh: lib/$jar missing after mvn" >&2; exit 1; }
done

echo "$want" >"$marker"
echo "install.sh: $(ls lib/*.jar | wc -l) jars in $(pwd)/lib"
