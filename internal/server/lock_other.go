//go:build !unix

package server

// lockDir is a no-op where flock does not exist: run one server per data dir.
func lockDir(dir string) (func(), error) { return func() {}, nil }
