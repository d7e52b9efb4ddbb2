# nginx assembled without a registry (scripts/build-images.sh) from Debian's nginx-light binary and
# its libraries, plus curl for the container health check. Runs unprivileged (uid 101, as the
# official nginx-unprivileged image) on 8080/8443;
# mount nginx/nginx.conf at /etc/nginx/nginx.conf and a certificate pair at /etc/nginx/tls.
FROM scratch
COPY rootfs/ /
USER 101:101
EXPOSE 8080 8443
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]
