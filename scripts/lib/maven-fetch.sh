# shellcheck shell=bash
# Sourced by scripts/kafka-cluster.sh and scripts/lib/kroxylicious.sh: fetches the runtime
# dependencies of a generated pom with mvn into DIST/libs, once. Concurrent callers wait on
# a lock; the jars are swapped in whole, so nothing ever sees a half-filled directory; a
# stamp of what was fetched makes a changed pom (or hook input) fetch again. The caller
# defines die and say.
#
#   maven_fetch WHAT DIST STAMP POM_FUNCTION PREPARE_FUNCTION REQUIRED_JAR...
#
# WHAT names the fetch in messages; POM_FUNCTION prints the pom; PREPARE_FUNCTION is called
# with the new libs directory before it is swapped in (`:` for nothing); each REQUIRED_JAR
# must be among the fetched files.

maven_dependency_plugin=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

maven_fetched() {
  [[ -f $1/.complete && $(cat "$1/.complete") == "$2" && -d $1/libs ]]
}

maven_fetch() {
  local what=$1 dist=$2 stamp=$3 pom=$4 prepare=$5 tmp reason jar
  shift 5
  maven_fetched "$dist" "$stamp" && return
  mkdir -p "$dist"
  exec 8>>"$dist/.fetch.lock"
  flock -w 900 8 || die "timed out waiting for another fetch of $what ($dist/.fetch.lock)"
  if maven_fetched "$dist" "$stamp"; then
    exec 8>&-
    return
  fi
  command -v mvn >/dev/null || die "mvn not found (run scripts/install-deps.sh)"
  say "fetching $what and its dependencies with mvn into $dist/libs (log: $dist/fetch.log)"
  "$pom" >"$dist/pom.xml"
  rm -rf "$dist"/libs.tmp.*
  tmp=$(mktemp -d "$dist/libs.tmp.XXXXXX")
  if ! mvn -B -q -U -Dstyle.color=never -f "$dist/pom.xml" "$maven_dependency_plugin:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$dist/fetch.log" 2>&1; then
    rm -rf "$tmp"
    reason=$(sed 's/\x1b\[[0-9;]*m//g' "$dist/fetch.log" | grep -m1 -F '[ERROR]' |
      sed 's/^\[ERROR\] *//' | cut -c1-300 || true)
    die "mvn could not fetch $what: ${reason:-see $dist/fetch.log} (full log: $dist/fetch.log)"
  fi
  for jar in "$@"; do
    [[ -f $tmp/$jar ]] || { rm -rf "$tmp"; die "mvn finished but $tmp lacks $jar"; }
  done
  "$prepare" "$tmp" || { rm -rf "$tmp"; die "preparing $what failed (see $dist/fetch.log)"; }
  rm -rf "$dist/libs.old"
  if [[ -d $dist/libs ]]; then mv "$dist/libs" "$dist/libs.old"; fi
  chmod 755 "$tmp"
  mv "$tmp" "$dist/libs"
  rm -rf "$dist/libs.old"
  echo "$stamp" >"$dist/.complete"
  exec 8>&-
  say "fetched $what: $(find "$dist/libs" -name '*.jar' | wc -l) jars"
}
