#!/usr/bin/env bash
# Sets up the TornadoVM backend where TornadoVM is installed, and says what is missing where not.
#
#   ./tornado-setup.sh            check, then build the engine with -Ptornado
#   ./tornado-setup.sh --check    only check and report
#
# Needs: a JDK >= 21 (the one TornadoVM's SDK was built for: a "-jdk25" SDK needs JDK 25), an
# OpenCL ICD with at least one device (Debian's pocl-opencl-icd gives a CPU device), and a
# TornadoVM SDK: $TORNADOVM_HOME, or an SDKMAN install (~/.sdkman/candidates/tornadovm/current).
# It never builds TornadoVM itself. The plain JVM build keeps working whatever this finds.
set -uo pipefail
cd "$(dirname "$0")"
check_only=false
[ "${1:-}" = "--check" ] && check_only=true
missing=()
say() { printf '%s\n' "$*"; }

# 1. JDK
if jdk=$(./with-jdk 2>/dev/null); then
  jdk_major=$("$jdk/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  say "JDK:       $jdk (Java $jdk_major)"
else
  missing+=("a JDK >= 21: install one (e.g. apt-get install openjdk-21-jdk, or a Temurin JDK) or set MHC_JAVA_HOME")
fi

# 2. OpenCL ICD
icd_count=$(ls /etc/OpenCL/vendors/*.icd 2>/dev/null | wc -l)
if [ "$icd_count" -gt 0 ]; then
  say "OpenCL:    $(ls /etc/OpenCL/vendors/*.icd | xargs -n1 basename | tr '\n' ' ')"
else
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! $check_only; then
    read -r -p "No OpenCL ICD found. Install Debian's PoCL (an OpenCL CPU device) now? [y/N] " answer </dev/tty || answer=n
    if [ "$answer" = y ] || [ "$answer" = Y ]; then
      apt-get update -qq && apt-get install -y -qq pocl-opencl-icd ocl-icd-libopencl1 clinfo >/dev/null \
        && say "OpenCL:    installed pocl-opencl-icd"
    fi
  fi
  [ "$(ls /etc/OpenCL/vendors/*.icd 2>/dev/null | wc -l)" -gt 0 ] || \
    missing+=("an OpenCL ICD: apt-get install pocl-opencl-icd (CPU device) or your GPU vendor's OpenCL driver")
fi

# 3. TornadoVM SDK
home="${TORNADOVM_HOME:-}"
if [ -z "$home" ] && [ -d "$HOME/.sdkman/candidates/tornadovm/current" ]; then
  home="$HOME/.sdkman/candidates/tornadovm/current"
fi
api=""
if [ -n "$home" ]; then
  api=$(ls "$home"/share/java/tornado/tornado-api-*.jar 2>/dev/null | head -1)
fi
if [ -n "$api" ]; then
  version=$(basename "$api" .jar); version=${version#tornado-api-}
  say "TornadoVM: $home (version $version)"
  case "$version" in
    *-jdk25) need=25 ;; *-jdk21) need=21 ;; *) need="" ;;
  esac
  if [ -n "$need" ] && [ -n "${jdk_major:-}" ] && [ "${jdk_major%%.*}" != "$need" ]; then
    missing+=("JDK $need for TornadoVM $version (found Java $jdk_major): set MHC_JAVA_HOME to a JDK $need")
  fi
  [ -f "$home/tornado-argfile" ] || missing+=("$home/tornado-argfile: generate it with the SDK's own tool (bin/tornado --generate-argfile, see the TornadoVM docs)")
else
  missing+=("TornadoVM: install a TornadoVM SDK (see https://tornadovm.readthedocs.io) and set TORNADOVM_HOME to it, or install it with SDKMAN")
fi

if [ ${#missing[@]} -gt 0 ]; then
  say ""
  say "The TornadoVM backend cannot be set up here. Missing:"
  for m in "${missing[@]}"; do say "  - $m"; done
  say ""
  say "The JVM build is unaffected: ./with-jdk mvn -B verify"
  exit 1
fi

export TORNADOVM_HOME="$home"
if $check_only; then
  say "Everything needed is here; run ./tornado-setup.sh to build."
  exit 0
fi

say ""
say "Building the engine with -Ptornado (tornado.version=$version) ..."
./with-jdk mvn -B -q -Ptornado -Dtornado.version="$version" -DskipTests package || { say "the -Ptornado build failed"; exit 1; }
say ""
say "Devices:"
"$home/bin/tornado" --jvm="-Dtornado.recover.bailout=False" -jar engine/target/mhc.jar devices 2>/dev/null | grep -v '^WARNING'
cat <<USAGE

Done. Run the engine on a TornadoVM device with the tornado launcher (TORNADOVM_HOME=$home):

  \$TORNADOVM_HOME/bin/tornado --jvm="-Dtornado.recover.bailout=False -Dtornado.device.memory=4GB" \\
      -jar engine/target/mhc.jar --params "train --preset tiny --backend tornado --device 0:0"

  # or with plain java and the SDK's argfile:
  java @\$TORNADOVM_HOME/tornado-argfile -Dtornado.recover.bailout=False -jar engine/target/mhc.jar \\
      train --preset tiny --backend tornado --device 0:0

  mhc devices                      lists backend:device indices
  --printKernel (launcher flag)    prints the generated OpenCL/PTX kernels
  -Dmhc.backend=jvm                forces the plain JVM path for comparison

Device tests: ./with-jdk mvn -B -Ptornado -Dtornado.version=$version verify
USAGE
