# HAProxy assembled without a registry (scripts/build-images.sh) from Debian's haproxy binary and its
# libraries, plus curl for the container health check. Runs unprivileged (uid 99, as the official
# haproxy image) on 8080/8443 in the foreground (-db); mount haproxy/haproxy.cfg at
# /usr/local/etc/haproxy/haproxy.cfg and a certificate pair at /usr/local/etc/haproxy/tls.
FROM scratch
COPY rootfs/ /
USER 99:99
EXPOSE 8080 8443
# SIGUSR1: soft stop (finish the requests in flight, then exit), what `docker stop` should do.
STOPSIGNAL SIGUSR1
ENTRYPOINT ["/usr/sbin/haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
