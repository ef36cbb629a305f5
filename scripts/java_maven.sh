# Sourced by scripts/install_flink.sh and scripts/install_spark.sh (they define log, die and MVN):
# ensure_java_maven [TOOL ...] makes sure Java 11+ (Java 17 installed when missing), Maven and the extra
# command-line TOOLs are present, apt-get installing what is missing (Debian/Ubuntu, as root or with
# sudo) unless RPV2_SKIP_APT=1 (or RPV2_FLINK_SKIP_APT=1); sets JAVA_MAJOR.

java_major() {  # major version of `java` on PATH ("1.8.0_x" -> 8, "17.0.15" -> 17), or nothing
  java -version 2>&1 | sed -n 's/.* version "\([0-9]*\)\.\{0,1\}\([0-9]*\).*/\1 \2/p' | head -1 \
    | awk '{ print ($1 == 1 ? $2 : $1) }'
}

ensure_java_maven() {
  local missing=() tool sudo=""
  if ! command -v java >/dev/null || [ "$(java_major)" -lt 11 ] 2>/dev/null; then missing+=(openjdk-17-jdk-headless); fi
  command -v "$MVN" >/dev/null || missing+=(maven)
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "${RPV2_SKIP_APT:-${RPV2_FLINK_SKIP_APT:-0}}" = 1 ]; then die "missing: ${missing[*]} (and RPV2_SKIP_APT=1)"; fi
    command -v apt-get >/dev/null || die "missing: ${missing[*]}; install them (no apt-get here)"
    [ "$(id -u)" = 0 ] || sudo=sudo
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  JAVA_MAJOR=$(java_major)
  [ -n "$JAVA_MAJOR" ] && [ "$JAVA_MAJOR" -ge 11 ] || die "Java 11 or newer needed (found: $(java -version 2>&1 | head -1))"
  command -v "$MVN" >/dev/null || die "maven ($MVN) not found"
  log "java $JAVA_MAJOR ($(command -v java)); $("$MVN" -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g')"
}
