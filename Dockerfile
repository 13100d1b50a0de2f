# libratod container image: a static binary on distroless, run as non-root.
#
#   docker build --build-arg VERSION=1.2.3 -t libratod .
#   docker run -d --name libratod -e LIBRATO_TOKEN -e LIBRATO_EMAIL \
#     -p 8125:8125/udp -p 8125:8125/tcp -p 127.0.0.1:9125:9125 libratod
#
# Configuration: /etc/libratod.toml (deploy/container.toml) plus
# LIBRATOD_<SECTION>_<KEY> environment variables; see README.md, "Operations".

FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/libratod ./cmd/libratod

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/libratod /libratod
COPY deploy/container.toml /etc/libratod.toml
EXPOSE 8125/udp 8125/tcp 9125/tcp
# Numeric, so that Kubernetes' runAsNonRoot can check it (65532 is distroless' nonroot).
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/libratod", "-health"]
ENTRYPOINT ["/libratod"]
CMD ["-config", "/etc/libratod.toml"]
