// Package version says which hookrelay this is.
package version

import (
	"runtime/debug"
	"sync"
)

// Version is set at build time with -ldflags "-X github.com/hookrelay/hookrelay/internal/version.Version=v1.2.3";
// otherwise it is the module version, or "dev" for a build from a source tree.
var Version = ""

// String returns the version. It is worked out once: reading the build information parses it.
var String = sync.OnceValue(func() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
})

// UserAgent is the User-Agent of deliveries.
var UserAgent = sync.OnceValue(func() string { return "hookrelay/" + String() })
