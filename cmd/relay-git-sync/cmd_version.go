package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time: go build -ldflags "-X main.version=v1.2.3".
// Without that flag, init takes the version the go command stamped into the
// binary, so `go install …@v1.2.3` builds do not report "dev".
var version = "dev"

// revision is the VCS commit the binary was built from ("" if unknown),
// with " (modified)" when the checkout had uncommitted changes.
var revision string

func init() {
	bi, _ := debug.ReadBuildInfo()
	version, revision = fromBuildInfo(version, bi)
}

// fromBuildInfo picks the version to report: the linker flag when given,
// else the main module's version (`go install module@v1.2.3` stamps it;
// go build in a git checkout stamps a pseudo-version), else "dev"; and the
// vcs.revision setting, which go build records in a checkout.
func fromBuildInfo(linkVersion string, bi *debug.BuildInfo) (version, revision string) {
	version = linkVersion
	if bi == nil {
		return version, ""
	}
	if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision != "" && modified {
		revision += " (modified)"
	}
	return version, revision
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version information (also: relay-git-sync --version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

func versionString() string {
	out := fmt.Sprintf("relay-git-sync %s\n", version)
	if revision != "" {
		out += fmt.Sprintf("commit: %s\n", revision)
	}
	return out + fmt.Sprintf("go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
