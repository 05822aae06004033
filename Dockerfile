# The image is built FROM scratch around the static binary that `make image`
# builds (the goreleaser convention): no registry is needed to build it, and
# the image holds nothing but the binary, CA certificates and the config.
#
#   make image            # builds dist/vantage, then this image
#   docker run -p 9115:9115 -p 7946:7946 -p 7946:7946/udp \
#     -v $PWD/vantage.toml:/etc/vantage/vantage.toml:ro vantage:latest
FROM scratch
COPY dist/vantage /usr/bin/vantage
COPY deploy/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY configs/example.toml /etc/vantage/vantage.toml
# nobody:nogroup; no shell, no package manager, nothing to exec into.
USER 65534:65534
EXPOSE 9115/tcp 7946/tcp 7946/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/bin/vantage", "healthcheck", "-url", "http://127.0.0.1:9115/readyz"]
ENTRYPOINT ["/usr/bin/vantage"]
CMD ["agent", "-config", "/etc/vantage/vantage.toml"]
