# The image is built FROM scratch around the static binary that `make image`
# builds (the goreleaser convention): no registry is needed to build it, and
# the image holds nothing but the binary, CA certificates and a config.
#
#   make image            # builds dist/vantage, then this image
#   docker run -p 9115:9115 -p 7946:7946 -p 7946:7946/udp \
#     -v $PWD/vantage.toml:/etc/vantage/vantage.toml:ro \
#     -v vantage-state:/var/lib/vantage vantage:latest
#
# Without a mounted config the built-in one (deploy/docker/vantage.toml) runs
# a single agent with loopback gossip, so the container starts and turns
# healthy. A mounted config must listen on 0.0.0.0:9115 (or keep port 9115
# on 127.0.0.1 reachable) for the HEALTHCHECK below. See docs/deploy.md.
#
# ICMP targets: the agent runs as nobody without capabilities, so it pings
# through unprivileged ICMP sockets, which net.ipv4.ping_group_range must
# allow for group 65534. Docker 20.10+ allows every group in a container's
# own network namespace; elsewhere add --sysctl
# net.ipv4.ping_group_range="65534 65534" (with --network host: the host's
# sysctl). See README.md, "ICMP targets need an ICMP socket".
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="vantage" \
      org.opencontainers.image.description="Synthetic probing agents that agree before they page" \
      org.opencontainers.image.source="https://github.com/vantage-probe/vantage" \
      org.opencontainers.image.version="${VERSION}"
COPY dist/vantage /usr/bin/vantage
COPY deploy/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY deploy/docker/vantage.toml /etc/vantage/vantage.toml
# The state directory (incidents, SLO accounting, history: README.md, "State
# and reports"), owned by the agent's user: a named volume mounted here takes
# its ownership. A bind mount must be writable by 65534. Set [agent].node (or
# -node): the state lives in /var/lib/vantage/<node>, and a container's host
# name changes with every container.
COPY --chown=65534:65534 deploy/docker/state/ /var/lib/vantage/
VOLUME /var/lib/vantage
# nobody:nogroup; no shell, no package manager, nothing to exec into.
USER 65534:65534
EXPOSE 9115/tcp 7946/tcp 7946/udp
# The check's own timeout is below Docker's so a hung agent is reported by
# the check (with its reason in `docker inspect`) rather than killed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/bin/vantage", "healthcheck", "-timeout", "2s", "-url", "http://127.0.0.1:9115/readyz"]
# SIGTERM (docker stop) makes the agent finish probes in flight, leave the
# cluster and stop; give it `docker stop -t 30` (compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/vantage"]
CMD ["agent", "-config", "/etc/vantage/vantage.toml"]
