# relay-git-sync: static binaries on a small Debian base with git and ssh.
# Build: docker build --build-arg VERSION=$(git describe --always) -t relay-git-sync .
# Run:   docker run -v relay-data:/data -p 8000:8000 \
#          -e RELAY_SERVER_URL -e RELAY_SERVER_API_KEY -e WEBHOOK_SECRET -e SSH_PRIVATE_KEY relay-git-sync

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -tags nomsgpack -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/ ./cmd/relay-git-sync ./cmd/git-remote-relay

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin relaysync \
 && mkdir -p /data && chown relaysync:relaysync /data
COPY --from=build /out/relay-git-sync /out/git-remote-relay /usr/local/bin/
USER relaysync
ENV RELAY_GIT_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["relay-git-sync"]
CMD ["serve"]
