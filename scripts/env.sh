# Sourced by every script: where the project-local dependencies live and how to build and run against them.
# Override KIS_DEPS to keep one set of dependencies for several checkouts.
kis_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KIS_DEPS=${KIS_DEPS:-$kis_root/.deps}
export KIS_RDKAFKA_PREFIX=${KIS_RDKAFKA_PREFIX:-$KIS_DEPS/librdkafka}
export KIS_VENV=${KIS_VENV:-$KIS_DEPS/venv}
export KIS_TANSU=${KIS_TANSU:-$KIS_DEPS/bin/tansu}
export KIS_RUN=${KIS_RUN:-$kis_root/.run}
export PKG_CONFIG_PATH="$KIS_RDKAFKA_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# pkg-config adds no rpath: without one a binary built against 2.8.0 would load any older system librdkafka.
export LD_LIBRARY_PATH="$KIS_RDKAFKA_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
KIS_SWIFT_FLAGS=(-Xlinker -rpath -Xlinker "$KIS_RDKAFKA_PREFIX/lib")
