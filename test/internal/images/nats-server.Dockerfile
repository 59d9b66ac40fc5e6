# nats-server for the end-to-end tests. The images package compiles the
# binary from its Go module (CGO_ENABLED=0, so it is static) and sends it as
# the whole build context; nothing is pulled.
FROM scratch
COPY nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
