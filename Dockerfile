# pave-operator's image for teams that build with Docker: the same root file system
# `make image` packs without Docker (the binary, the libraries ldd lists, the CA
# bundle, a passwd naming user 65532; no shell). pave's CI has no Docker engine and
# builds the image with `make image`; this file is kept in step by tests/image.rs.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pave-operator \
 && mkdir -p /rootfs/etc/ssl/certs \
 && install -m 0555 target/release/pave-operator /rootfs/pave-operator \
 && strip /rootfs/pave-operator \
 && for lib in $(ldd target/release/pave-operator | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do \
      install -D -m 0555 "$(readlink -f "$lib")" "/rootfs$lib"; \
    done \
 && install -m 0444 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && printf 'pave:x:65532:65532:pave:/:/nonexistent\n' >/rootfs/etc/passwd \
 && printf 'pave:x:65532:\n' >/rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/pave-operator"]
