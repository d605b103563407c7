// Package conformance is Sésame's stand-in for the OpenID Foundation's
// conformance suite (openid-certification/conformance-suite), which needs
// Java, Maven Central and MongoDB that our build and CI do not have.
//
// Each test is named after one OP test module of the suite and drives the
// broker the way that module does, through an in-process stack
// (broker/teststack: the broker and two mock IdPs with real HTTP between
// them), with go-oidc and x/oauth2 as an independent relying party and
// go-jose for signature checks against the published JWKS. The tests assert
// what the suite, OpenID Connect Core 1.0, RFC 6749, RFC 9207 and
// RP-Initiated Logout 1.0 require, not what the broker happens to do.
//
// Covered plans:
//
//   - oidcc-basic-certification-test-plan: every module, one Test each
//     (TestOidccServer ... TestOidccEnsureRequestWithValidPkceSucceeds);
//   - oidcc-config-certification-test-plan: TestOidccDiscoveryEndpointVerification;
//   - oidcc-rp-initiated-logout-certification-test-plan: TestOidccRpInitiatedLogout*.
//
// Where FranceConnect deliberately deviates (nonce required), the platform
// policy is a config switch and the test covers both settings.
//
// The package has no code of its own: everything lives in its _test.go
// files. Run it with
//
//	go test -count=1 ./conformance/
//
// Every test is parallel; oidcc-codereuse-30seconds waits 30 s, which
// bounds the package's run time.
package conformance
