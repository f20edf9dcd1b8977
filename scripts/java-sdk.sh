#!/usr/bin/env bash
# Prints the class path of the Milvus Java SDK application for the
# end-to-end tests (e2e/testdata/java), compiling it first into
# .cache/java-sdk when it is missing or stale: Maven resolves the SDK and
# its dependencies from Maven Central into the user's Maven repository,
# javac compiles the application. Without a JDK and Maven it installs
# Debian's (as root); otherwise it says what to do and prints nothing, and
# the test that needs the SDK skips (or fails under ZDM_REQUIRE_INTEGRATION).
set -euo pipefail
if [ -n "${ZDM_JAVA_CLASSPATH:-}" ]; then echo "$ZDM_JAVA_CLASSPATH"; exit 0; fi
top=$(cd "$(dirname "$0")/.." && pwd)
src="$top/e2e/testdata/java"
dir="$top/.cache/java-sdk"
has_java() { command -v java >/dev/null && command -v javac >/dev/null && command -v mvn >/dev/null; }
if ! has_java && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "java-sdk: installing Debian's JDK and Maven for the Java client test" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends default-jdk-headless maven ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jdk-headless maven; }; } >&2
fi
if ! has_java; then
  echo "java-sdk: java, javac and mvn not found; install them (apt-get install default-jdk-headless maven) or set ZDM_JAVA_CLASSPATH" >&2
  exit 0
fi
stamp=$(cat "$src/pom.xml" "$src"/src/main/java/*.java | sha256sum | cut -c1-16)
fresh() {
  [ "$(cat "$dir/stamp" 2>/dev/null)" = "$stamp" ] || return 1
  local jar
  # A Maven repository cleaned since leaves the class path pointing nowhere.
  for jar in $(tr ':' ' ' < "$dir/classpath"); do [ -f "$jar" ] || return 1; done
}
if ! fresh; then
  echo "java-sdk: resolving the Milvus Java SDK and compiling the application into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir/classes"
  # Maven 3.8's quiet mode still prints colour resets; they are dropped.
  mvn -B -q -Dstyle.color=never -f "$src/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.6.1:build-classpath \
    -Dmdep.outputFile="$dir/classpath" | sed 's/\x1b\[[0-9;]*m//g' >&2
  javac -nowarn -d "$dir/classes" -cp "$(cat "$dir/classpath")" "$src"/src/main/java/*.java >&2
  echo "$stamp" > "$dir/stamp"
fi
echo "$dir/classes:$(cat "$dir/classpath")"
