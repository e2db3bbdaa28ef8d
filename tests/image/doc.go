// Package image tests the container image of bootstrap/deploy/Dockerfile: it
// builds it with `make image` (Debian's podman, no registry), checks what the
// image declares (a non-root user, the HEALTHCHECK, the exposed port, the
// entrypoint, the listen address), and runs it with podman, published on
// 127.0.0.1 only: the embedded default answers /healthz, passes its own
// HEALTHCHECK, and acks a WebSocket send from a dev-token client. The
// container is removed whether the test passes or not, and the image when
// the package's tests end. The containers run under runc with explicit
// ulimits, for the reasons podmanArgs gives; nothing here starts a JVM.
package image
