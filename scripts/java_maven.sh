# Sourced by scripts/install_flink.sh and scripts/install_spark.sh (they define log, die and MVN):
# ensure_java_maven [TOOL ...] makes sure Java 11+ (Java 17 installed when missing), Maven and the extra
# command-line TOOLs are present, apt-get installing what is missing (Debian/Ubuntu, as root or with
# sudo) unless RPV2_SKIP_APT=1 (or RPV2_FLINK_SKIP_APT=1); sets JAVA_MAJOR.
# shade_jar builds a runnable fat jar (a Beam job server or runner lib) with maven-shade.

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

# shade_jar DIR ARTIFACT VERSION MAIN_CLASS ADD_OPENS DEPENDENCIES OUT WHAT: writes DIR/pom.xml for
# rpv2.local:ARTIFACT:VERSION with the DEPENDENCIES (pom <dependency> XML), shades them into one jar
# (signatures and module-info dropped, service files and reference.conf merged) whose manifest names
# MAIN_CLASS, Multi-Release and the Java 17 ADD_OPENS (space-separated module/package) plus the
# --add-exports Beam's runners need, so that a plain `java -jar` (what Beam runs) works; copies it to
# OUT atomically. Logs "building WHAT"; returns 1 (see DIR/build.log) when maven fails.
shade_jar() {
  local dir=$1 artifact=$2 version=$3 main=$4 opens=$5 deps=$6 out=$7 what=$8
  mkdir -p "$dir"
  cat > "$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>rpv2.local</groupId>
  <artifactId>$artifact</artifactId>
  <version>$version</version>
  <properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <dependencies>
    $deps
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-shade-plugin</artifactId>
        <version>3.5.1</version>
        <executions><execution><phase>package</phase><goals><goal>shade</goal></goals>
          <configuration>
            <createDependencyReducedPom>false</createDependencyReducedPom>
            <filters><filter><artifact>*:*</artifact><excludes>
              <exclude>META-INF/*.SF</exclude><exclude>META-INF/*.DSA</exclude><exclude>META-INF/*.RSA</exclude>
              <exclude>module-info.class</exclude><exclude>META-INF/versions/*/module-info.class</exclude>
            </excludes></filter></filters>
            <transformers>
              <transformer implementation="org.apache.maven.plugins.shade.resource.ServicesResourceTransformer"/>
              <transformer implementation="org.apache.maven.plugins.shade.resource.AppendingTransformer"><resource>reference.conf</resource></transformer>
              <transformer implementation="org.apache.maven.plugins.shade.resource.ManifestResourceTransformer">
                <mainClass>$main</mainClass>
                <manifestEntries>
                  <Multi-Release>true</Multi-Release>
                  <Add-Opens>$opens</Add-Opens>
                  <Add-Exports>java.base/sun.net.util java.management/sun.management java.rmi/sun.rmi.registry java.security.jgss/sun.security.krb5</Add-Exports>
                </manifestEntries>
              </transformer>
            </transformers>
          </configuration>
        </execution></executions>
      </plugin>
    </plugins>
  </build>
</project>
POM
  log "building $what (maven-shade, ~1 min)"
  if ! (cd "$dir" && "$MVN" -B -q package > build.log 2>&1); then
    log "  build failed, see $dir/build.log"; return 1
  fi
  mkdir -p "$(dirname "$out")"
  cp -f "$dir/target/$artifact-$version.jar" "$out.tmp" && mv -f "$out.tmp" "$out"
  rm -rf "$dir/target"
}
