#!/usr/bin/env bash
# Assembles an Apache POI that opens .xlsx, from Debian's packages alone, for tests/support/readers/poi.
#
# Debian's libapache-poi-java (4.0.1) ships poi-ooxml-schemas-4.0.1.jar as a 114-file stub: its
# Factory classes point at a TypeSystemHolder the jar lacks, so `new XSSFWorkbook(...)` fails with
# POIXMLException: org/apache/xmlbeans/metadata/system/s036263A03D2D3FD117889707DB51207A/TypeSystemHolder.
# The package's source (libapache-poi-java_4.0.1.orig.tar.xz) carries the ECMA-376 1st edition
# XSDs (ooxml-xsds/) that its build compiles; this script compiles them the same way (Debian's
# patch 10 for the xml.xsd import, scomp of Debian's libxmlbeans-java 4.0.0, javac) into a full
# schema jar, which Debian's poi-ooxml-4.0.1.jar (built against exactly those classes) then uses.
#
# Idempotent; everything goes under $POI_READER_CACHE (default ~/.cache/catalog-report/poi).
# Needs root for apt-get (as on CI), Debian's archive, ~2 CPU-minutes and ~1.5 GB of heap once.
set -euo pipefail

CACHE="${POI_READER_CACHE:-$HOME/.cache/catalog-report/poi}"
JAR="$CACHE/ooxml-schemas-4.0.1-full.jar"
VERSION=4.0.1

if [ -s "$JAR" ] && [ -s /usr/share/java/poi-ooxml-$VERSION.jar ] && command -v javac >/dev/null; then
    echo "poi reader: $JAR already built"
    exit 0
fi

pkgs=(libapache-poi-java libxmlbeans-java xmltooling-schemas)
command -v javac >/dev/null || pkgs+=(openjdk-17-jdk-headless)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    for i in 1 2 3 4 5; do
        if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
            break
        fi
        [ "$i" = 5 ] && { echo "poi reader: apt-get install ${missing[*]} failed" >&2; exit 1; }
        # Another apt-get may hold the dpkg lock, or the lists may be stale.
        sleep 15
        apt-get update -qq || true
    done
fi

# The source package, through apt with a private deb-src list and state, so the machine's own
# apt sources stay as they are.
mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial" "$CACHE/src"
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
    > "$CACHE/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$CACHE/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$CACHE/apt/lists" -o "Dir::Cache=$CACHE/apt/cache"
          -o "APT::Sandbox::User=root")
orig="$CACHE/src/libapache-poi-java_$VERSION.orig.tar.xz"
if [ ! -s "$orig" ]; then
    apt-get "${apt_opts[@]}" update -qq
    # The source of the very binary installed: its poi-ooxml jar was compiled against these schemas.
    binary=$(dpkg-query -W -f='${Version}' libapache-poi-java)
    (cd "$CACHE/src" && apt-get "${apt_opts[@]}" source --download-only "libapache-poi-java=$binary")
fi
debian_tar=$(ls "$CACHE"/src/libapache-poi-java_$VERSION-*.debian.tar.xz | tail -1)

build="$CACHE/build"
rm -rf "$build"
mkdir -p "$build/tree" "$build/xsds" "$build/gen-src" "$build/classes"
tar -xJf "$orig" -C "$build/tree" --strip-components=1 \
    "apache-poi-$VERSION/ooxml-xsds" "apache-poi-$VERSION/ooxml-lib" \
    "apache-poi-$VERSION/src/ooxml/resources/org/apache/poi/schemas" \
    "apache-poi-$VERSION/src/ooxml/resources/org/apache/poi/xdgf"
tar -xJf "$debian_tar" -C "$build/tree" debian/patches/10_resolve-xml-namespaces.patch
(cd "$build/tree" && patch -s -p1 < debian/patches/10_resolve-xml-namespaces.patch)

# What build.xml's compile-ooxml-xsds target compiles (Debian's patch 05): every ooxml-xsds file
# but opc-*, the Visio schema and the xsdconfig that maps the Microsoft namespaces to packages.
cp "$build"/tree/ooxml-xsds/*.xsd "$build/xsds/"
rm -f "$build"/xsds/opc-*.xsd
cp "$build"/tree/src/ooxml/resources/org/apache/poi/xdgf/* \
   "$build"/tree/src/ooxml/resources/org/apache/poi/schemas/* "$build/xsds/"

J=/usr/share/java
scomp_cp="$J/xmlbeans.jar:$J/javaparser-core.jar:$J/Saxon-HE.jar:$J/xml-resolver.jar"
nice java -Xmx1536m -XX:+UseSerialGC -cp "$scomp_cp" org.apache.xmlbeans.impl.tool.SchemaCompiler \
    -quiet -srconly -src "$build/gen-src" -d "$build/classes" "$build/xsds"
find "$build/gen-src" -name '*.java' > "$build/sources.txt"
if ! nice javac -J-Xmx2g -J-XX:+UseSerialGC -nowarn -encoding UTF-8 --release 8 \
        -cp "$J/xmlbeans.jar:$build/classes" -d "$build/classes" @"$build/sources.txt" \
        > "$build/javac.log" 2>&1; then
    tail -40 "$build/javac.log" >&2
    echo "poi reader: javac of the schema classes failed" >&2
    exit 1
fi
test -n "$(find "$build/classes" -name 'CTWorksheet.class' -print -quit)" \
    || { echo "poi reader: schema classes were not compiled" >&2; exit 1; }
(cd "$build/classes" && jar cf "$JAR.tmp" .)
mv "$JAR.tmp" "$JAR"
rm -rf "$build"
echo "poi reader: built $JAR"
