#!/usr/bin/env bash
# Builds the two images of the local stack and the integration suite without pulling anything:
#   postgres-mcp:local        the release binary + its shared libraries, CA certificates, uid 10001
#   postgres-mcp-nginx:local  Debian's nginx-light binary + its shared libraries, uid 101
#   postgres-mcp-haproxy:local Debian's haproxy binary + its shared libraries, uid 99
# all FROM scratch (no shell). The two load balancers carry Debian's curl (and its libraries) for
# their container health check, which asks their loopback-only self check over HTTP. This is the one code path for both users of
# these images (`make up` and `cargo nextest run -p integration-tests`); it is safe to run
# concurrently (a lock serializes builders) and cheap when nothing changed (cargo and docker caches).
#
# Environment: IMAGE_TAG (default local), CARGO_PROFILE (default release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${IMAGE_TAG:-local}
profile=${CARGO_PROFILE:-release}
out="$root/target/images"
mkdir -p "$out"

exec 9>"$out/.lock"
flock 9

command -v docker >/dev/null || { echo "docker is required to build the images" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is required on the host (apt-get install nginx-light)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy is required on the host (apt-get install haproxy)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is required on the host (apt-get install curl)" >&2; exit 1; }
[ -n "${LIBCLANG_PATH:-}" ] || compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null ||
  { echo "libclang is required on the host to build the server (scripts/setup.sh installs it)" >&2; exit 1; }

# Copies a binary to DEST inside ROOTFS with every shared library it loads (ldd), at their paths.
copy_with_libraries() {
  local binary=$1 rootfs=$2 dest=$3
  install -D -m 0755 "$binary" "$rootfs$dest"
  ldd "$binary" | awk '/=> \//{print $3} /^[[:space:]]*\/.*ld-linux/{print $1}' | while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done
}

# Writes /etc/passwd, /etc/group, /etc/nsswitch.conf and /tmp for a non-root user.
base_files() {
  local rootfs=$1 user=$2 uid=$3
  mkdir -p "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n%s:x:%s:%s:%s:/nonexistent:/sbin/nologin\n' \
    "$user" "$uid" "$uid" "$user" > "$rootfs/etc/passwd"
  printf 'root:x:0:\n%s:x:%s:\n' "$user" "$uid" > "$rootfs/etc/group"
  printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
}

# --- postgres-mcp -------------------------------------------------------------------------------
echo "building postgres-mcp ($profile)..."
(cd "$root" && cargo build --profile "$profile" --locked -p postgres-mcp --bin postgres-mcp)
profile_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
server="$out/server"
rm -rf "$server" && mkdir -p "$server/app/config" "$server/app/data"
cp "$root/scripts/images/server.Dockerfile" "$server/Dockerfile"
base_files "$server/rootfs" app 10001
copy_with_libraries "$root/target/$profile_dir/postgres-mcp" "$server/rootfs" /usr/local/bin/postgres-mcp
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$server/rootfs/etc/ssl/certs/ca-certificates.crt"
docker build -q -t "postgres-mcp:$tag" "$server" >/dev/null
echo "built postgres-mcp:$tag"

# --- nginx --------------------------------------------------------------------------------------
proxy="$out/nginx"
rm -rf "$proxy" && mkdir -p "$proxy"
cp "$root/scripts/images/nginx.Dockerfile" "$proxy/Dockerfile"
base_files "$proxy/rootfs" nginx 101
copy_with_libraries /usr/sbin/nginx "$proxy/rootfs" /usr/sbin/nginx
copy_with_libraries "$(command -v curl)" "$proxy/rootfs" /usr/bin/curl
mkdir -p "$proxy/rootfs/etc/nginx/tls" "$proxy/rootfs/var/log/nginx"
docker build -q -t "postgres-mcp-nginx:$tag" "$proxy" >/dev/null
echo "built postgres-mcp-nginx:$tag"

# --- haproxy ------------------------------------------------------------------------------------
balancer="$out/haproxy"
rm -rf "$balancer" && mkdir -p "$balancer"
cp "$root/scripts/images/haproxy.Dockerfile" "$balancer/Dockerfile"
base_files "$balancer/rootfs" haproxy 99
copy_with_libraries "$(command -v haproxy)" "$balancer/rootfs" /usr/sbin/haproxy
copy_with_libraries "$(command -v curl)" "$balancer/rootfs" /usr/bin/curl
mkdir -p "$balancer/rootfs/usr/local/etc/haproxy/tls"
docker build -q -t "postgres-mcp-haproxy:$tag" "$balancer" >/dev/null
echo "built postgres-mcp-haproxy:$tag"
