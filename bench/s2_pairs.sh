#!/usr/bin/env bash
# Hand measurements on the S2 project that bench_s2.py prepares (run
# `python3 bench/bench_s2.py --prepare-only` first; it leaves /var/tmp/reprolock-s2):
#   bash bench/s2_pairs.sh sbom     cold `reprolock lock` with and without the SBOM, alternated twice
#   bash bench/s2_pairs.sh docker   `docker build --no-cache` then a cold gzip `reprolock build`
# Each reprolock run starts from a fresh cache that holds only the wheel store. reprolock runs
# from bench_s2.py's venv (/var/tmp/reprolock-s2/venv); reinstall this checkout into it first:
#   /var/tmp/reprolock-s2/venv/bin/python -m pip install -q --force-reinstall --no-deps .
set -euo pipefail
W=/var/tmp/reprolock-s2; V=$W/venv; P=$W/s2

fresh() {  # a cache directory holding only the wheel store
  rm -rf "$1"; mkdir -p "$1/caches/reprolock" "$1/caches/uv" "$1/caches/xdg"
  cp -al "$W/wheel-cache-s2/artifacts" "$1/caches/reprolock/artifacts"
}

rl() {  # reprolock with a clean environment and the cache of $1
  local root=$1; shift
  env -i PATH="$V/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root PIP_CONFIG_FILE=/dev/null \
    UV_CACHE_DIR="$root/caches/uv" XDG_CACHE_HOME="$root/caches/xdg" \
    REPROLOCK_CACHE_DIR="$root/caches/reprolock" "$@"
}

sbom() {
  cp "$P/reprolock.lock.json" "$W/lock.bak"
  for i in 1 2; do
    for mode in sbom nosbom; do
      R=$W/pair-$mode-$i; fresh "$R"
      cp "$W/lock.bak" "$P/reprolock.lock.json"; rm -f "$P/reprolock.sbom.spdx.json"
      extra=(); [ "$mode" = nosbom ] && extra=(--no-sbom)
      (cd "$P" && rl "$R" /usr/bin/time -f "$mode run $i: %e s %M KB" \
        "$V/bin/reprolock" lock -q --jobs 2 "${extra[@]}" 2>&1 | tail -1)
      [ "$mode" = sbom ] && sha256sum "$P/reprolock.sbom.spdx.json"
      rm -rf "$R"
    done
  done
  cp "$W/lock.bak" "$P/reprolock.lock.json"
}

docker_pair() {
  skopeo copy -q "oci:$(dirname "$0")/../fixtures/example/.reprolock/base:bookworm" \
    docker-daemon:reprolock-bench/s2-base:bookworm
  (cd "$P" && /usr/bin/time -f "docker build --no-cache: %e s" env DOCKER_BUILDKIT=0 \
    docker build -q --no-cache --network none -f Dockerfile.standard \
    -t reprolock-bench/s2-manual:latest . 2>&1 | tail -1)
  R=$W/pair-docker; fresh "$R"
  (cd "$P" && rl "$R" /usr/bin/time -f "reprolock build gzip cold: %e s %M KB" \
    "$V/bin/reprolock" build -q --compression gzip --jobs 2 -o "oci:$R/image" 2>&1 | tail -1)
  rm -rf "$R"
  docker rmi -f reprolock-bench/s2-manual:latest reprolock-bench/s2-base:bookworm >/dev/null
}

case "${1:-}" in
  sbom) sbom ;;
  docker) docker_pair ;;
  *) echo "usage: bash bench/s2_pairs.sh sbom|docker" >&2; exit 2 ;;
esac
