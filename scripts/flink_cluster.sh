#!/usr/bin/env bash
# A single-machine standalone Flink cluster (one JobManager + one TaskManager, 2 slots, as two
# separate JVMs) from the distribution that scripts/install_flink.sh unpacks.
#
#   scripts/flink_cluster.sh start [PORT]   start (REST/web UI on 127.0.0.1:PORT, default 8081) and
#                                           wait until it reports 1 TaskManager with 2 slots
#   scripts/flink_cluster.sh stop           stop both processes (SIGTERM, then SIGKILL after 15 s)
#   scripts/flink_cluster.sh status         exit 0 if running; prints pids and /overview
#
# Beam pipelines then use: --runner=FlinkRunner --flink_version=<MM> --flink_master=localhost:PORT
#
# Environment:
#   RPV2_FLINK_CLUSTER_DIR  conf/, log/, tmp/ and pid files (default ~/.cache/rpv2/flink-cluster)
#   RPV2_FLINK_HOME         Flink distribution (default: from ~/.cache/rpv2/flink.env)
#   RPV2_FLINK_RPC_PORT     JobManager RPC port (default 6123)
#   RPV2_FLINK_SLOTS        task slots (default 2)
#   RPV2_FLINK_TM_MEMORY    TaskManager process size (default 2048m)
#   RPV2_FLINK_JM_MEMORY    JobManager process size (default 1024m)
#   RPV2_FLINK_START_TIMEOUT seconds to wait for the cluster (default 120)
set -euo pipefail

RPV2_CACHE=${RPV2_CACHE:-$HOME/.cache/rpv2}
CLUSTER_DIR=${RPV2_FLINK_CLUSTER_DIR:-$RPV2_CACHE/flink-cluster}
ENV_FILE=$RPV2_CACHE/flink.env
SLOTS=${RPV2_FLINK_SLOTS:-2}
RPC_PORT=${RPV2_FLINK_RPC_PORT:-6123}
TM_MEM=${RPV2_FLINK_TM_MEMORY:-2048m}
JM_MEM=${RPV2_FLINK_JM_MEMORY:-1024m}
START_TIMEOUT=${RPV2_FLINK_START_TIMEOUT:-120}

log() { echo "[flink_cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

FLINK_HOME_DIR=${RPV2_FLINK_HOME:-}
if [ -z "$FLINK_HOME_DIR" ] && [ -f "$ENV_FILE" ]; then
  FLINK_HOME_DIR=$(sed -n 's/^RPV2_FLINK_HOME=//p' "$ENV_FILE")
fi

PID_DIR=$CLUSTER_DIR/pid
JM_PID_FILE=$PID_DIR/flink-rpv2-standalonesession.pid
TM_PID_FILE=$PID_DIR/flink-rpv2-taskexecutor.pid
PORT_FILE=$CLUSTER_DIR/rest.port

pids_of() {  # live pids listed in a Flink pid file
  [ -f "$1" ] || return 0
  local p
  while read -r p; do
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
  done < "$1"
  return 0
}

overview() {  # $1 = port; prints the REST /overview JSON or fails
  curl -fsS --max-time 3 "http://127.0.0.1:$1/overview" 2>/dev/null
}

json_field() {  # $1 = json, $2 = field
  python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null || true
}

do_status() {
  local jm tm port ov
  jm=$(pids_of "$JM_PID_FILE"); tm=$(pids_of "$TM_PID_FILE")
  port=$(cat "$PORT_FILE" 2>/dev/null || echo 8081)
  echo "cluster dir : $CLUSTER_DIR"
  echo "jobmanager  : ${jm:-not running}"
  echo "taskmanager : ${tm:-not running}"
  if ov=$(overview "$port"); then
    echo "rest        : http://127.0.0.1:$port  $ov"
  else
    echo "rest        : http://127.0.0.1:$port not answering"
  fi
  [ -n "$jm" ] && [ -n "$tm" ]
}

write_conf() {  # $1 = port
  local conf=$CLUSTER_DIR/conf
  mkdir -p "$conf" "$CLUSTER_DIR/log" "$CLUSTER_DIR/tmp" "$PID_DIR"
  cp -f "$FLINK_HOME_DIR"/conf/log4j*.properties "$FLINK_HOME_DIR"/conf/logback*.xml "$conf/"
  # Java 17 module flags: the ones install_flink.sh wrote (Flink's own defaults)
  local java_opts
  java_opts=$(sed -n 's/^      all: //p' "$FLINK_HOME_DIR/conf/config.yaml" | head -1)
  cat > "$conf/config.yaml" <<EOF
# Written by rpv2 scripts/flink_cluster.sh
env:
  java:
    opts:
      all: $java_opts
  pid:
    dir: $PID_DIR
  log:
    dir: $CLUSTER_DIR/log
io:
  tmp:
    dirs: $CLUSTER_DIR/tmp
web:
  tmpdir: $CLUSTER_DIR/tmp
jobmanager:
  bind-host: 127.0.0.1
  rpc:
    address: 127.0.0.1
    port: $RPC_PORT
  memory:
    process:
      size: $JM_MEM
  execution:
    failover-strategy: region
taskmanager:
  bind-host: 127.0.0.1
  host: 127.0.0.1
  numberOfTaskSlots: $SLOTS
  memory:
    process:
      size: $TM_MEM
    # Beam's batch translation makes many tasks (one per fused stage and slot); Flink's default
    # 10% network memory fails with "Insufficient number of network buffers" even for toy jobs.
    network:
      fraction: 0.25
      min: 256mb
      max: 1gb
    managed:
      fraction: 0.25
parallelism:
  default: $SLOTS
rest:
  port: $1
  address: 127.0.0.1
  bind-address: 127.0.0.1
blob:
  server:
    port: "0"
  service:
    cleanup:
      # each Beam job uploads its ~150 MB job-server jar; drop it 60 s after the job (default 1 h)
      interval: 60
EOF
  # With Beam's runner classes in lib/ (install_flink.sh puts them there) and loaded parent-first,
  # Beam keeps SDK worker environments alive between stages (--environment_cache_millis); loaded
  # from the job jar, it tears them down after every stage (new Python workers each time).
  if ls "$FLINK_HOME_DIR"/lib/beam-runners-flink-*.jar >/dev/null 2>&1; then
    cat >> "$conf/config.yaml" <<EOF
classloader:
  resolve-order: parent-first
EOF
  fi
}

do_start() {
  local port=${1:-8081} waited=0 ov tms slots
  [ -n "$FLINK_HOME_DIR" ] && [ -x "$FLINK_HOME_DIR/bin/jobmanager.sh" ] \
    || die "no Flink distribution (run scripts/install_flink.sh, or set RPV2_FLINK_HOME)"
  command -v curl >/dev/null || die "curl not found"
  if [ -n "$(pids_of "$JM_PID_FILE")$(pids_of "$TM_PID_FILE")" ]; then
    log "already running (stop it first to change the port):"; do_status; return 0
  fi
  if overview "$port" >/dev/null; then die "something already answers on 127.0.0.1:$port"; fi
  rm -f "$JM_PID_FILE" "$TM_PID_FILE"
  write_conf "$port"
  echo "$port" > "$PORT_FILE"
  export FLINK_CONF_DIR=$CLUSTER_DIR/conf FLINK_LOG_DIR=$CLUSTER_DIR/log FLINK_PID_DIR=$PID_DIR
  export FLINK_IDENT_STRING=rpv2
  log "starting Flink $(basename "$FLINK_HOME_DIR") JobManager + TaskManager, REST on 127.0.0.1:$port"
  # setsid: the daemons outlive the calling shell's process group
  setsid "$FLINK_HOME_DIR/bin/jobmanager.sh" start > "$CLUSTER_DIR/log/start-jobmanager.out" 2>&1 < /dev/null
  setsid "$FLINK_HOME_DIR/bin/taskmanager.sh" start > "$CLUSTER_DIR/log/start-taskmanager.out" 2>&1 < /dev/null
  while :; do
    if ov=$(overview "$port"); then
      tms=$(json_field "$ov" taskmanagers); slots=$(json_field "$ov" slots-total)
      if [ "$tms" = 1 ] && [ "$slots" = "$SLOTS" ]; then
        log "ready after ${waited}s: $ov"
        log "web UI http://127.0.0.1:$port ; logs in $CLUSTER_DIR/log"
        return 0
      fi
    fi
    if [ -z "$(pids_of "$JM_PID_FILE")" ] || [ -z "$(pids_of "$TM_PID_FILE")" ]; then
      log "a Flink process died; last log lines:"
      tail -n 30 "$CLUSTER_DIR"/log/*.log "$CLUSTER_DIR"/log/*.out 2>/dev/null >&2 || true
      do_stop; exit 1
    fi
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      log "not ready after ${START_TIMEOUT}s"; do_stop; exit 1
    fi
    sleep 1; waited=$((waited + 1))
  done
}

stop_pids() {  # $1 = name, $2 = pid file
  local pids p i
  pids=$(pids_of "$2")
  if [ -z "$pids" ]; then rm -f "$2"; return 0; fi
  log "stopping $1 (pid $(echo $pids))"
  # shellcheck disable=SC2086
  kill $pids 2>/dev/null || true
  for i in $(seq 1 15); do
    [ -z "$(pids_of "$2")" ] && break
    sleep 1
  done
  for p in $(pids_of "$2"); do
    log "$1 pid $p still alive after 15s: SIGKILL"; kill -9 "$p" 2>/dev/null || true
  done
  rm -f "$2"
}

do_stop() {
  stop_pids taskmanager "$TM_PID_FILE"
  stop_pids jobmanager "$JM_PID_FILE"
  log "stopped"
}

case "${1:-}" in
  start) do_start "${2:-8081}" ;;
  stop) do_stop ;;
  status) do_status ;;
  *) echo "usage: $0 start [PORT] | stop | status" >&2; exit 2 ;;
esac
