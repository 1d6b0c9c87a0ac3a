# Build: a static binary with the templ components already generated and
# committed, so the build needs only the Go toolchain.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/b24learn ./cmd/b24learn

# Run: a small image with CA certificates, as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/b24learn /usr/local/bin/b24learn
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/b24learn"]
CMD ["serve"]
