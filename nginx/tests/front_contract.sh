# What every load balancer of the kit must do on its public side, whatever its config language:
# sourced by nginx/tests/run.sh and haproxy/tests/run.sh once their balancer listens on 8080/8443
# (in a private network namespace), so the two fronts are held to one list. Defines `expect` and
# `https` for the caller's own further checks.
location() { curl -s -o /dev/null -w '%{redirect_url}' -H "Host: $1" "http://127.0.0.1:8080$2"; }
expect() { [ "$1" = "$2" ] || { echo "expected $2, got $1 ($3)"; exit 1; }; }
https() { curl -sk -o /dev/null -w '%{http_code}' --resolve "localhost:8443:127.0.0.1" "https://localhost:8443$1"; }
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
# The HTTP -> HTTPS redirect keeps the port pair.
expect "$(location localhost:8080 '/mcp?x=1')" "https://localhost:8443/mcp?x=1" "Compose's 8080 -> 8443"
expect "$(location example.com /mcp)" "https://example.com/mcp" "port 80 -> 443"
expect "$(location example.com:80 /mcp)" "https://example.com/mcp" "explicit :80 -> 443"
expect "$(location '[::1]:8080' /)" "https://[::1]:8443/" "IPv6 literal"
# Internal paths are not proxied.
expect "$(https /health/details)" 404 "/health/details is internal"
expect "$(https /metrics)" 404 "/metrics is internal"
