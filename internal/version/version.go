// Package version holds the build stamp of poolagent and poolserver.
//
// Release builds set Version with -ldflags "-X .../internal/version.Version=v1.2.3";
// other builds fall back to the module version recorded by the Go toolchain.
package version

import "runtime/debug"

// Version is the program's version, stamped at link time.
var Version = ""

// String returns the stamped version, the module version from the build
// info, or "dev" when neither is known.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
