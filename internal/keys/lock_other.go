//go:build !unix

package keys

// lockDir does nothing where flock is missing: run one rotation at a time.
func lockDir(string) (func(), error) { return func() {}, nil }
