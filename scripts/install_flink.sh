#!/usr/bin/env bash
# Installs what Beam's Python FlinkRunner needs on this machine, without Docker and without any
# download beyond Maven Central and PyPI:
#
#   1. a Beam Flink job-server jar, placed in Beam's jar cache under the exact name the Python
#      FlinkRunner looks for (~/.apache_beam/cache/jars/beam-runners-flink-<MM>-job-server-<beam>.jar),
#      so Beam never tries to download it at run time;
#   2. a Flink distribution (bin/ conf/ lib/ plugins/) of the job server's Flink version, for a
#      standalone cluster (see scripts/flink_cluster.sh), unpacked from the PyPI packages
#      apache-flink-libraries (lib/, plugins/) and apache-flink (bin/, conf/). Nothing is installed
#      into the Python environment.
#
# Job-server jar, in this order:
#   a. already in the jar cache for the installed apache-beam version -> kept;
#   b. Beam's own org.apache.beam:beam-runners-flink-<MM>-job-server:<beam version> from Maven
#      Central, for each Flink <MM> of RPV2_FLINK_MM;
#   c. otherwise built here with maven-shade from org.apache.beam:beam-runners-flink-<MM>:<V> (the
#      job-server jar is just that artifact + its dependencies + slf4j, main class
#      FlinkJobServerDriver), for V = the installed version, then $RPV2_BEAM_RUNNER_FALLBACK.
#      The Java 17 --add-opens/--add-exports Flink needs go into the jar's manifest, so a plain
#      `java -jar` (what Beam runs) works.
#
# Also: $RPV2_FLINK_HOME/lib/beam-runners-flink-<MM>-<V>-lib.jar (Beam runner classes for the
# cluster, see flink_cluster.sh) and $RPV2_CACHE/bin/beam_sdk_boot (a Python stand-in for Beam's Go
# `boot`, for --environment_type=PROCESS: SDK worker processes without Docker).
#
# Writes $RPV2_CACHE/flink.env (RPV2_FLINK_HOME, RPV2_FLINK_VERSION, RPV2_FLINK_MM,
# RPV2_FLINK_JOB_SERVER_JAR, ...) for scripts/flink_cluster.sh and for pipelines.
# Idempotent: each step is skipped when its result is present. Set RPV2_FLINK_FORCE=1 to redo all.
#
# Environment:
#   PYTHON                      python with apache-beam installed (default: python3)
#   RPV2_CACHE                  default ~/.cache/rpv2
#   RPV2_FLINK_HOME             Flink distribution dir (default $RPV2_CACHE/flink-<flink version>)
#   RPV2_BEAM_JAR_CACHE         Beam's jar cache (default ~/.apache_beam/cache/jars; pass the same
#                               dir to pipelines with --jar_cache_dir if you change it)
#   RPV2_BEAM_RUNNER_FALLBACK   Beam Java versions to build the job server from when Maven Central
#                               lacks the installed one (default "2.62.0")
#   RPV2_FLINK_MM               Flink major.minor versions to try, in order (default 1.19, the
#                               version configs/runners/flink*.yaml name as --flink_version)
#   RPV2_SKIP_APT=1             do not apt-get install missing tools (java, maven, unzip, curl)
#   MVN                         maven command (default: mvn)
#
# Needs Java 11 or 17 (Flink 1.19's), Maven, unzip and curl; the ones missing are installed with
# apt-get (Debian/Ubuntu, as root or with sudo) unless RPV2_SKIP_APT=1. Network: Maven Central
# (or the mirror in ~/.m2/settings.xml) and PyPI, at install time only; pipelines run offline.
set -euo pipefail

PYTHON=${PYTHON:-python3}
MVN=${MVN:-mvn}
RPV2_CACHE=${RPV2_CACHE:-$HOME/.cache/rpv2}
JAR_CACHE=${RPV2_BEAM_JAR_CACHE:-$HOME/.apache_beam/cache/jars}
FALLBACK_VERSIONS=${RPV2_BEAM_RUNNER_FALLBACK:-2.62.0}
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
FORCE=${RPV2_FLINK_FORCE:-0}
FLINK_MMS=${RPV2_FLINK_MM:-1.19}

T0=$(date +%s)
log() { echo "[install_flink +$(( $(date +%s) - T0 ))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- tools: java (11+), maven, unzip, curl; apt-get what is missing ---------------------------
# shellcheck source=scripts/java_maven.sh
. "$(dirname "$0")/java_maven.sh"
ensure_java_maven unzip curl

# --- what the installed Beam wants -----------------------------------------------------------
BEAM_VERSION=$("$PYTHON" -c 'import apache_beam; print(apache_beam.__version__)' 2>/dev/null) \
  || die "cannot import apache_beam with $PYTHON (run: make python-deps)"
log "apache-beam (Python) $BEAM_VERSION; Flink versions to try: $FLINK_MMS"
mkdir -p "$JAR_CACHE" "$RPV2_CACHE"

cached_name() { echo "beam-runners-flink-$1-job-server-$BEAM_VERSION.jar"; }

JOB_SERVER_JAR="" FLINK_MM="" HOW=""

# a. already cached
if [ "$FORCE" != 1 ]; then
  for mm in $FLINK_MMS; do
    if [ -s "$JAR_CACHE/$(cached_name "$mm")" ]; then
      JOB_SERVER_JAR=$JAR_CACHE/$(cached_name "$mm") FLINK_MM=$mm HOW="already cached"
      break
    fi
  done
fi

# b. Beam's published job-server jar
if [ -z "$JOB_SERVER_JAR" ]; then
  for mm in $FLINK_MMS; do
    art=org.apache.beam:beam-runners-flink-$mm-job-server:$BEAM_VERSION:jar
    log "trying $art from Maven Central"
    if "$MVN" -B -q "$DEP_PLUGIN:copy" -Dartifact="$art" -DoutputDirectory="$JAR_CACHE" \
        -Dmdep.overWriteReleases=true >/dev/null 2>&1 && [ -s "$JAR_CACHE/$(cached_name "$mm")" ]; then
      JOB_SERVER_JAR=$JAR_CACHE/$(cached_name "$mm") FLINK_MM=$mm HOW="downloaded $art"
      break
    fi
    log "  not served"
  done
fi

# c. build it from beam-runners-flink-<MM>:<V>
build_shaded() {  # $1 = flink major.minor, $2 = beam java version, $3 = jobserver|lib, $4 = output jar
  # jobserver: runner + Flink + all deps + slf4j-simple, main class FlinkJobServerDriver (what Beam
  #            publishes as beam-runners-flink-<MM>-job-server);
  # lib:       runner + deps WITHOUT Flink and slf4j, for the standalone cluster's lib/ directory.
  local mm=$1 v=$2 kind=$3 out=$4 dir excl extra
  dir=$RPV2_CACHE/build/flink-$kind-$mm-$v
  excl='<exclusion><groupId>commons-logging</groupId><artifactId>commons-logging</artifactId></exclusion>'
  extra='<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.30</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>jcl-over-slf4j</artifactId><version>1.7.30</version></dependency>'
  if [ "$kind" = lib ]; then
    excl="$excl<exclusion><groupId>org.apache.flink</groupId><artifactId>*</artifactId></exclusion><exclusion><groupId>org.slf4j</groupId><artifactId>*</artifactId></exclusion>"
    extra=""
  fi
  shade_jar "$dir" "beam-runners-flink-$mm-$kind" "$v" org.apache.beam.runners.flink.FlinkJobServerDriver \
    "java.base/java.lang java.base/java.lang.reflect java.base/java.lang.invoke java.base/java.io java.base/java.net java.base/java.nio java.base/sun.nio.ch java.base/java.text java.base/java.time java.base/java.util java.base/java.util.concurrent java.base/java.util.concurrent.atomic java.base/java.util.concurrent.locks" \
    "<dependency>
      <groupId>org.apache.beam</groupId>
      <artifactId>beam-runners-flink-$mm</artifactId>
      <version>$v</version>
      <exclusions>$excl</exclusions>
    </dependency>
    $extra" \
    "$out" "the $kind jar from org.apache.beam:beam-runners-flink-$mm:$v"
}

if [ -z "$JOB_SERVER_JAR" ]; then
  # shellcheck disable=SC2086
  for v in $BEAM_VERSION $FALLBACK_VERSIONS; do
    for mm in $FLINK_MMS; do
      art=org.apache.beam:beam-runners-flink-$mm:$v
      # cheap probe (pom only), then the full dependency tree
      "$MVN" -B -q "$DEP_PLUGIN:get" -Dartifact="$art:pom" -Dtransitive=false >/dev/null 2>&1 || continue
      log "found $art; resolving its dependencies"
      "$MVN" -B -q "$DEP_PLUGIN:get" -Dartifact="$art" >/dev/null 2>&1 || { log "  dependencies of $art not all served"; continue; }
      if build_shaded "$mm" "$v" jobserver "$JAR_CACHE/$(cached_name "$mm")"; then
        JOB_SERVER_JAR=$JAR_CACHE/$(cached_name "$mm") FLINK_MM=$mm HOW="built from $art"
        break 2
      fi
    done
  done
fi
[ -n "$JOB_SERVER_JAR" ] || die "no Beam Flink job server could be fetched or built (tried Beam $BEAM_VERSION $FALLBACK_VERSIONS, Flink $FLINK_MMS)"

# versions inside the jar
BEAM_JAVA_VERSION=$(unzip -p "$JOB_SERVER_JAR" "META-INF/maven/org.apache.beam/beam-runners-flink-$FLINK_MM/pom.properties" 2>/dev/null | sed -n 's/^version=//p' | tr -d '\r')
FLINK_VERSION=$(unzip -p "$JOB_SERVER_JAR" .flink-runtime.version.properties 2>/dev/null | sed -n 's/^project.version=//p' | tr -d '\r')
BEAM_JAVA_VERSION=${BEAM_JAVA_VERSION:-unknown}
FLINK_VERSION=${FLINK_VERSION:-$FLINK_MM.0}
log "job server: $JOB_SERVER_JAR ($HOW; Beam Java $BEAM_JAVA_VERSION, Flink $FLINK_VERSION)"

# --- 2. Flink distribution for a standalone cluster -------------------------------------------
FLINK_HOME_DIR=${RPV2_FLINK_HOME:-$RPV2_CACHE/flink-$FLINK_VERSION}
if [ "$FORCE" != 1 ] && [ -x "$FLINK_HOME_DIR/bin/jobmanager.sh" ] && [ -f "$FLINK_HOME_DIR/bin/bash-java-utils.jar" ] \
    && ls "$FLINK_HOME_DIR"/lib/flink-dist-*.jar >/dev/null 2>&1; then
  log "Flink $FLINK_VERSION distribution already at $FLINK_HOME_DIR"
else
  dl=$(mktemp -d "$RPV2_CACHE/flink-download.XXXXXX")
  trap 'rm -rf "$dl"' EXIT
  log "downloading apache-flink-libraries==$FLINK_VERSION and apache-flink==$FLINK_VERSION from PyPI (~235 MB)"
  "$PYTHON" -m pip download -q --no-deps -d "$dl" "apache-flink-libraries==$FLINK_VERSION"
  # any CPython wheel of apache-flink carries the same bin/ and conf/ (shell scripts, yaml)
  "$PYTHON" -m pip download -q --no-deps -d "$dl" --only-binary=:all: \
      --python-version 3.11 --implementation cp --abi cp311 --platform manylinux2014_x86_64 \
      "apache-flink==$FLINK_VERSION"
  rm -rf "$FLINK_HOME_DIR.tmp" && mkdir -p "$FLINK_HOME_DIR.tmp"
  tar --no-same-owner -xzf "$dl"/apache-flink-libraries-"$FLINK_VERSION".tar.gz -C "$dl"
  src=$dl/apache-flink-libraries-$FLINK_VERSION/deps
  mv "$src/lib" "$src/plugins" "$FLINK_HOME_DIR.tmp/"
  [ -d "$src/licenses" ] && mv "$src/licenses" "$FLINK_HOME_DIR.tmp/"
  unzip -q -o "$dl"/apache_flink-"$FLINK_VERSION"-*.whl 'pyflink/bin/*' 'pyflink/conf/*' -d "$dl/whl"
  mv "$dl/whl/pyflink/bin" "$dl/whl/pyflink/conf" "$FLINK_HOME_DIR.tmp/"
  cp "$src/bin/bash-java-utils.jar" "$FLINK_HOME_DIR.tmp/bin/"
  chmod +x "$FLINK_HOME_DIR.tmp"/bin/*.sh "$FLINK_HOME_DIR.tmp"/bin/flink
  mkdir -p "$FLINK_HOME_DIR.tmp/log"
  rm -rf "$FLINK_HOME_DIR" && mv "$FLINK_HOME_DIR.tmp" "$FLINK_HOME_DIR"
  rm -rf "$dl"; trap - EXIT
  log "Flink $FLINK_VERSION unpacked to $FLINK_HOME_DIR"
fi

# Base configuration (scripts/flink_cluster.sh copies it and sets ports and directories).
# Flink >= 1.19 reads conf/config.yaml (standard YAML); the Java 17 flags are Flink's own defaults.
JAVA17_OPTS="--add-exports=java.base/sun.net.util=ALL-UNNAMED --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED --add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED --add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED --add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED --add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED --add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.text=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED"
cat > "$FLINK_HOME_DIR/conf/config.yaml" <<EOF
# Written by rpv2 scripts/install_flink.sh: a single-machine standalone cluster.
env:
  java:
    opts:
      all: $JAVA17_OPTS
jobmanager:
  bind-host: 127.0.0.1
  rpc:
    address: 127.0.0.1
    port: 6123
  memory:
    process:
      size: 1024m
  execution:
    failover-strategy: region
taskmanager:
  bind-host: 127.0.0.1
  host: 127.0.0.1
  numberOfTaskSlots: 2
  memory:
    process:
      size: 2048m
parallelism:
  default: 2
rest:
  port: 8081
  address: 127.0.0.1
  bind-address: 127.0.0.1
EOF
rm -f "$FLINK_HOME_DIR/conf/flink-conf.yaml"

# Beam's runner classes (no Flink, no slf4j) in the cluster's lib/, same Beam Java version as the job
# server. flink_cluster.sh then loads classes parent-first, which lets Beam keep Python SDK workers
# alive across stages on the cluster (otherwise it starts new workers for every stage).
LIB_JAR=$FLINK_HOME_DIR/lib/beam-runners-flink-$FLINK_MM-$BEAM_JAVA_VERSION-lib.jar
if [ -s "$LIB_JAR" ] && [ "$FORCE" != 1 ]; then
  log "Beam runner lib jar already at $LIB_JAR"
else
  rm -f "$FLINK_HOME_DIR"/lib/beam-runners-flink-*.jar
  if [ "$BEAM_JAVA_VERSION" != unknown ] \
      && "$MVN" -B -q "$DEP_PLUGIN:get" -Dartifact="org.apache.beam:beam-runners-flink-$FLINK_MM:$BEAM_JAVA_VERSION" >/dev/null 2>&1 \
      && build_shaded "$FLINK_MM" "$BEAM_JAVA_VERSION" lib "$LIB_JAR"; then
    log "Beam runner lib jar: $LIB_JAR"
  else
    log "WARNING: no Beam runner lib jar for the cluster; it works, but starts new SDK workers per stage"
  fi
fi

# PROCESS environment without Docker: Beam's Go `boot` is not on PyPI; this stand-in fetches the
# pipeline options from the runner and runs the Python SDK harness with this same interpreter.
BOOT=$RPV2_CACHE/bin/beam_sdk_boot
PY_EXE=$("$PYTHON" -c 'import sys; print(sys.executable)')
mkdir -p "$RPV2_CACHE/bin"
cat > "$BOOT.tmp" <<EOF
#!$PY_EXE
"""Stand-in for Beam's container \`boot\` for --environment_type=PROCESS (written by install_flink.sh).

Called by the runner as: boot --id=ID --provision_endpoint=H:P --logging_endpoint=H:P
--artifact_endpoint=H:P --control_endpoint=H:P. Runs the SDK harness in this interpreter; staged
artifacts (requirements, extra packages) are NOT installed: the current environment is used as is.
"""
import argparse
import os
import sys

import grpc
from google.protobuf import json_format
from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc

ap = argparse.ArgumentParser()
for name in ('id', 'provision_endpoint', 'logging_endpoint', 'artifact_endpoint',
             'control_endpoint', 'semi_persist_dir'):
    ap.add_argument('--' + name, default='')
args, _ = ap.parse_known_args()
with grpc.insecure_channel(args.provision_endpoint) as channel:
    info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
        beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[('worker_id', args.id)]).info
env = os.environ
env['PIPELINE_OPTIONS'] = json_format.MessageToJson(info.pipeline_options)
env['LOGGING_API_SERVICE_DESCRIPTOR'] = 'url: "%s"' % (info.logging_endpoint.url or args.logging_endpoint)
env['CONTROL_API_SERVICE_DESCRIPTOR'] = 'url: "%s"' % (info.control_endpoint.url or args.control_endpoint)
if info.status_endpoint.url:
    env['STATUS_API_SERVICE_DESCRIPTOR'] = 'url: "%s"' % info.status_endpoint.url
env['RUNNER_CAPABILITIES'] = ' '.join(info.runner_capabilities)
env['WORKER_ID'] = args.id
if args.semi_persist_dir:
    env['SEMI_PERSISTENT_DIRECTORY'] = args.semi_persist_dir
from apache_beam.runners.worker import sdk_worker_main  # noqa: E402

sdk_worker_main.main(sys.argv)
EOF
chmod +x "$BOOT.tmp" && mv -f "$BOOT.tmp" "$BOOT"

ENV_FILE=$RPV2_CACHE/flink.env
cat > "$ENV_FILE" <<EOF
# Written by scripts/install_flink.sh
RPV2_FLINK_HOME=$FLINK_HOME_DIR
RPV2_FLINK_VERSION=$FLINK_VERSION
RPV2_FLINK_MM=$FLINK_MM
RPV2_FLINK_JOB_SERVER_JAR=$JOB_SERVER_JAR
RPV2_BEAM_JAVA_VERSION=$BEAM_JAVA_VERSION
RPV2_BEAM_PYTHON_VERSION=$BEAM_VERSION
RPV2_BEAM_SDK_BOOT=$BOOT
EOF

cat <<EOF
Flink for Beam is ready ($(( $(date +%s) - T0 ))s):
  job server jar : $JOB_SERVER_JAR
                   ($HOW; Beam Java $BEAM_JAVA_VERSION, Flink $FLINK_VERSION)
  Flink home     : $FLINK_HOME_DIR
  settings       : $ENV_FILE
  SDK worker boot: $BOOT
Use it:
  on this machine (embedded Flink, two SDK worker processes):
    rpv2 run --runner-profile flink-local ...
  on a standalone cluster on this machine:
    scripts/flink_cluster.sh start 8081
    rpv2 run --runner-profile flink-local --flink_master=localhost:8081 ...
    scripts/flink_cluster.sh stop
EOF
