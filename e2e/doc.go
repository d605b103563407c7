// Package e2e holds Sésame's end-to-end tests. They build the sesame binary
// once, start the broker, the mock identity providers and the demo SP as
// three separate processes on loopback ports (with a private redis-server, or
// the in-memory store), and drive real logins over HTTP and in a headless
// chromium. The broker serves two platforms, standard and "+" (each on its
// own port); the "+" tests act as an SP with their own keys (private_key_jwt,
// JWE id_tokens and userinfo) and drive the mock IdPs' test scenarios.
//
// The package has no code of its own: everything lives in its _test.go
// files. Run it with
//
//	SESAME_REQUIRE_REDIS=1 SESAME_REQUIRE_CHROMIUM=1 go test -count=1 -v ./e2e/
//
// Screenshots of the browser tests land in $SESAME_ARTIFACTS/screenshots, by
// default artifacts/screenshots at the repository's root (gitignored); see
// docs/accessibility.md.
package e2e
