// Package version holds camhub's version, set at build time with
// -ldflags "-X camhub/internal/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is the camhub release. Builds from a checkout report the VCS
// revision instead.
var Version = ""

// String returns the version to show and report.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
