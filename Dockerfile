# promreload: one image holding both binaries.
#   docker build -t promreload:0.1.0 .
# The sidecar is the entrypoint (also as /bin/prometheus-config-reloader, the operator's
# command); the reconciler runs with command ["/promreload-reconciler"].

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits reuse the cached dependency layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin benches tests \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > src/bin/reconciler.rs \
 && touch src/lib.rs \
 && for f in benches/render.rs benches/reconciler.rs benches/reaction.rs tests/reconciler.rs tests/render.rs tests/deploy.rs tests/e2e.rs tests/oracle.rs tests/node.rs tests/alerts.rs; do echo 'fn main() {}' > "$f"; done \
 && cargo build --release --locked --bins \
 && rm -rf src benches tests
COPY src ./src
COPY benches ./benches
COPY tests ./tests
# Cargo skips a rebuild when mtimes look older than its fingerprints: make them new.
RUN touch src/main.rs src/lib.rs src/bin/reconciler.rs \
 && cargo build --release --locked --bins \
 && mkdir -p /out/bin && ln -s /promreload /out/bin/prometheus-config-reloader

# glibc-linked binaries: distroless "cc" (glibc, libgcc, CA certificates), non-root user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/promreload /promreload
COPY --from=build /src/target/release/promreload-reconciler /promreload-reconciler
# prometheus-operator runs its reloader as /bin/prometheus-config-reloader: with
# --prometheus-config-reloader=<this image>, its generated Pods run promreload unchanged.
COPY --from=build /out/bin/prometheus-config-reloader /bin/prometheus-config-reloader
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/promreload"]
