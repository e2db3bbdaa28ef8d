#!/bin/sh
# Fills lib/ with the RocketMQ name server, broker and admin-tool jars that the
# Go helpers in tests/infra run on the local JDK (there is no Docker on the test
# machines), plus chatd-loopback-ha.jar built from src/, which keeps the
# broker's HA listener on 127.0.0.1 (5.3.3 binds it to every interface).
# Idempotent: lib/.installed records a hash of pom.xml and src/, so a run with
# nothing changed does nothing, and an edit or an interrupted run triggers a
# clean re-install.
set -eu

cd "$(dirname "$0")"

marker=lib/.installed
want=$(cat pom.xml $(find src -type f | sort) | sha256sum | cut -d' ' -f1)

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
	exit 0
fi

for tool in mvn java javac jar; do
	command -v "$tool" >/dev/null 2>&1 || { echo "install.sh: $tool not found (needs JDK 17 and Maven)" >&2; exit 1; }
done

# A stale or partial lib/ could mix versions on the classpath; start over.
rm -rf lib build
mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=lib

for jar in rocketmq-namesrv-5.3.3.jar rocketmq-broker-5.3.3.jar rocketmq-tools-5.3.3.jar; do
	[ -f "lib/$jar" ] || { echo "install.sh: lib/$jar missing after mvn" >&2; exit 1; }
done

mkdir -p build/classes
javac --release 17 -nowarn -cp 'lib/*' -d build/classes $(find src -name '*.java')
cp -r src/META-INF build/classes/
jar cf lib/chatd-loopback-ha.jar -C build/classes .
rm -rf build

echo "$want" >"$marker"
echo "install.sh: $(ls lib/*.jar | wc -l) jars in $(pwd)/lib"
