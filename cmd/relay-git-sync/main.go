// Command relay-git-sync gives Relay shared folders a real git history.
//
// The command tree lives in the other files of this package, one file per
// command; main only wires the process to it: signals, exit codes, and the
// single-line error report.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)

	// Cancel the context on the first SIGINT/SIGTERM so commands can shut down
	// cleanly; after that the default handling is restored, so a second Ctrl-C
	// kills the process at once.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if s, ok := <-sigs; ok {
			signal.Stop(sigs)
			cancel(interruptedError{s})
		}
	}()
	defer signal.Stop(sigs)

	opts := newGlobalOptions(os.Getenv, os.Stdout, os.Stderr)
	cmd, err := newRootCmd(opts).ExecuteContextC(ctx)
	return exitCode(context.Cause(ctx), err, isService(cmd), os.Stderr)
}

// serviceAnnotation marks the commands that run until they are told to
// stop (serve, mount, demo): for them SIGTERM or SIGINT is the normal way
// to end, and a clean stop exits 0 (systemd counts 143 as a failure).
const serviceAnnotation = "relay-git-sync/stops-on-signal"

// stopsOnSignal is the Annotations of such a command.
func stopsOnSignal() map[string]string { return map[string]string{serviceAnnotation: "true"} }

func isService(cmd *cobra.Command) bool {
	return cmd != nil && cmd.Annotations[serviceAnnotation] == "true"
}

// interruptedError records which signal ended the run, so the exit status
// follows the shell convention 128+signal (130 for Ctrl-C).
type interruptedError struct{ sig os.Signal }

func (e interruptedError) Error() string { return "interrupted by " + e.sig.String() }

// exitCode reports err on stderr as one line and picks the exit status:
// 128+signal after an interrupt of a one-shot command, 0 after a clean stop
// of a service by a signal, 1 for any other error, 0 otherwise.
func exitCode(cause, err error, service bool, stderr io.Writer) int {
	var intr interruptedError
	if errors.As(cause, &intr) && service && (err == nil || errors.Is(err, context.Canceled)) {
		return 0
	}
	if errors.As(cause, &intr) && !service {
		// A command stopped by the signal usually returns context.Canceled;
		// that says nothing the exit status does not.
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "relay-git-sync: %s\n", oneLine(err))
		}
		if s, ok := intr.sig.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay-git-sync: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// oneLine folds multi-line errors (cobra's "Did you mean this?" suggestions)
// into a single line so logs and scripts see one record per failure.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
