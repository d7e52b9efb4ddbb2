# postgres-mcp runtime image assembled without a registry (scripts/build-images.sh).
# Same layout, user, port and entrypoint as server/Dockerfile, the image users build with a registry:
# what the integration suite proves on this image holds for that one.
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 app/ /app/
USER 10001:10001
WORKDIR /app
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/postgres-mcp", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/postgres-mcp"]
CMD ["serve"]
