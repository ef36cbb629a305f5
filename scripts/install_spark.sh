#!/usr/bin/env bash
# Installs what Beam's Python SparkRunner needs to run rpv2 on a local Spark (the spark-local runner
# profile), without Docker: a Beam Spark job-server jar, placed in Beam's jar cache under the exact name
# the SparkRunner looks for (~/.apache_beam/cache/jars/beam-runners-spark-3-job-server-<beam>.jar), so
# Beam never tries to download it at run time. The SDK workers use the boot command of
# scripts/install_flink.sh ($RPV2_CACHE/bin/beam_sdk_boot).
#
# Job-server jar, in this order:
#   a. already in the jar cache for the installed apache-beam version -> kept;
#   b. Beam's own org.apache.beam:beam-runners-spark-3-job-server:<beam version> from Maven Central;
#   c. otherwise built here with maven-shade from org.apache.beam:beam-runners-spark-3:<V> plus Spark
#      $RPV2_SPARK_VERSION (spark-core and spark-streaming, Scala 2.12: "provided" dependencies of the
#      runner) and slf4j, main class SparkJobServerDriver, for V = the installed version, then
#      $RPV2_BEAM_RUNNER_FALLBACK. The Java 17 --add-opens Spark needs go into the jar's manifest.
# Idempotent; RPV2_SPARK_FORCE=1 rebuilds.
#
# Environment: PYTHON (default python3), RPV2_CACHE (default ~/.cache/rpv2), RPV2_BEAM_JAR_CACHE
# (default ~/.apache_beam/cache/jars), RPV2_BEAM_RUNNER_FALLBACK (default 2.62.0), RPV2_SPARK_VERSION
# (default 3.5.1), RPV2_SKIP_APT=1 (no apt-get for missing java/maven), MVN (default mvn).
set -euo pipefail

PYTHON=${PYTHON:-python3}
MVN=${MVN:-mvn}
RPV2_CACHE=${RPV2_CACHE:-$HOME/.cache/rpv2}
JAR_CACHE=${RPV2_BEAM_JAR_CACHE:-$HOME/.apache_beam/cache/jars}
FALLBACK_VERSIONS=${RPV2_BEAM_RUNNER_FALLBACK:-2.62.0}
SPARK_VERSION=${RPV2_SPARK_VERSION:-3.5.1}
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
FORCE=${RPV2_SPARK_FORCE:-0}

T0=$(date +%s)
log() { echo "[install_spark +$(( $(date +%s) - T0 ))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/java_maven.sh
. "$(dirname "$0")/java_maven.sh"
ensure_java_maven unzip

BEAM_VERSION=$("$PYTHON" -c 'import apache_beam; print(apache_beam.__version__)' 2>/dev/null) \
  || die "cannot import apache_beam with $PYTHON (run: make python-deps)"
mkdir -p "$JAR_CACHE" "$RPV2_CACHE"
JAR=$JAR_CACHE/beam-runners-spark-3-job-server-$BEAM_VERSION.jar
HOW=""

if [ "$FORCE" != 1 ] && [ -s "$JAR" ]; then
  HOW="already cached"
fi

if [ -z "$HOW" ]; then
  art=org.apache.beam:beam-runners-spark-3-job-server:$BEAM_VERSION:jar
  log "trying $art from Maven Central"
  if "$MVN" -B -q "$DEP_PLUGIN:copy" -Dartifact="$art" -DoutputDirectory="$JAR_CACHE" \
      -Dmdep.overWriteReleases=true >/dev/null 2>&1 && [ -s "$JAR" ]; then
    HOW="downloaded $art"
  else
    log "  not served"
  fi
fi

build_job_server() {  # $1 = beam java version
  local v=$1 dir
  dir=$RPV2_CACHE/build/spark-jobserver-3-$v
  shade_jar "$dir" beam-runners-spark-3-jobserver "$v" org.apache.beam.runners.spark.SparkJobServerDriver \
    "java.base/java.lang java.base/java.lang.reflect java.base/java.lang.invoke java.base/java.io java.base/java.net java.base/java.nio java.base/sun.nio.ch java.base/sun.nio.cs java.base/sun.security.action java.base/sun.util.calendar java.base/java.text java.base/java.time java.base/java.util java.base/java.util.concurrent java.base/java.util.concurrent.atomic java.base/java.util.concurrent.locks" \
    "<dependency>
      <groupId>org.apache.beam</groupId>
      <artifactId>beam-runners-spark-3</artifactId>
      <version>$v</version>
      <exclusions><exclusion><groupId>commons-logging</groupId><artifactId>commons-logging</artifactId></exclusion></exclusions>
    </dependency>
    <dependency><groupId>org.apache.spark</groupId><artifactId>spark-core_2.12</artifactId><version>$SPARK_VERSION</version></dependency>
    <dependency><groupId>org.apache.spark</groupId><artifactId>spark-streaming_2.12</artifactId><version>$SPARK_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.30</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>jcl-over-slf4j</artifactId><version>1.7.30</version></dependency>" \
    "$JAR" "the job server from org.apache.beam:beam-runners-spark-3:$v + Spark $SPARK_VERSION"
}

if [ -z "$HOW" ]; then
  # shellcheck disable=SC2086
  for v in $BEAM_VERSION $FALLBACK_VERSIONS; do
    art=org.apache.beam:beam-runners-spark-3:$v
    "$MVN" -B -q "$DEP_PLUGIN:get" -Dartifact="$art:pom" -Dtransitive=false >/dev/null 2>&1 || continue
    log "found $art; resolving its dependencies"
    "$MVN" -B -q "$DEP_PLUGIN:get" -Dartifact="$art" >/dev/null 2>&1 || { log "  dependencies of $art not all served"; continue; }
    if build_job_server "$v"; then HOW="built from $art"; break; fi
  done
fi
[ -n "$HOW" ] || die "no Beam Spark job server could be fetched or built (tried Beam $BEAM_VERSION $FALLBACK_VERSIONS)"
BEAM_JAVA_VERSION=$(unzip -p "$JAR" META-INF/maven/org.apache.beam/beam-runners-spark-3/pom.properties 2>/dev/null \
  | sed -n 's/^version=//p' | tr -d '\r')
log "job server: $JAR ($HOW; Beam Java ${BEAM_JAVA_VERSION:-unknown})"
[ -x "$RPV2_CACHE/bin/beam_sdk_boot" ] || log "WARNING: $RPV2_CACHE/bin/beam_sdk_boot missing: run scripts/install_flink.sh (the spark-local profile's SDK workers use it)"
echo "Spark for Beam is ready ($(( $(date +%s) - T0 ))s): rpv2 run --runner-profile spark-local ..."
