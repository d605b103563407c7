// Package deploy holds no code of Sésame: it is the test module of the
// deployment files beside it (the Dockerfile, compose.yaml, the Helm
// chart) and of config/production.example.yaml. Its tests check those
// files against what the binary really serves and reads: they build
// cmd/sesame from the parent module, render the chart with Helm's own
// packages, and start the binary on the rendered config.
//
// It is a module of its own so that Helm and the Kubernetes libraries stay
// out of Sésame's go.mod; `go test ./...` at the repository root does not
// descend here, scripts/test.sh runs it.
package deploy
