// Command cairn is Cairn's command-line tool: `cairn dev` runs a whole
// local cluster in one process; the admin commands (status, node,
// rebalance, repair, metad, bucket, key) are clients of metad's gRPC API.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code: 0, or 1 after
// printing a one-line error to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return runAdmin(ctx, &admin{stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}, args)
}

func runAdmin(ctx context.Context, a *admin, args []string) int {
	stdout, stderr := a.stdout, a.stderr
	root := newRoot(a)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "cairn:", strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	return 0
}

func newRoot(a *admin) *cobra.Command {
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "Cairn object store: local clusters and cluster administration",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDevCmd(),
		a.statusCmd(),
		a.nodeCmd(),
		a.rebalanceCmd(),
		a.repairCmd(),
		a.metadCmd(),
		a.bucketCmd(),
		a.keyCmd(),
	)
	return root
}
