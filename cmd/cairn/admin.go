package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/metadata/metaclient"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// admin is what every admin command shares: where metad is, how to print,
// and how long a call may take. The commands are pure clients of the metad
// gRPC API (through metaclient, which follows the leader).
type admin struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time

	// Flags, on every admin command.
	metad   string
	json    bool
	timeout time.Duration

	addrs  []string // resolved by connect
	source string   // where addrs came from: "--metad", "CAIRN_METAD", "default"
}

// devMetadAddrs are the gRPC addresses of `cairn dev`'s metad members.
func devMetadAddrs() []string {
	var out []string
	for i := range 3 {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", devBasePort+100+i))
	}
	return out
}

// addFlags puts the shared flags on an admin command (and its children).
func (a *admin) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.metad, "metad", "", "metad gRPC `ADDR,...` (default $CAIRN_METAD, else the `cairn dev` addresses "+strings.Join(devMetadAddrs(), ",")+")")
	fs.BoolVar(&a.json, "json", false, "print JSON (exact numbers) instead of tables")
	fs.DurationVar(&a.timeout, "timeout", 10*time.Second, "longest wait for each call to metad")
}

// connect resolves the metad addresses, checks that at least one accepts
// connections (so an absent cluster is reported at once, not after the
// call's timeout) and returns a client. The caller closes it.
func (a *admin) connect(ctx context.Context) (*metaclient.Client, error) {
	switch {
	case a.metad != "":
		a.addrs, a.source = metaclient.ParseAddrs(a.metad), "--metad"
	case a.getenv("CAIRN_METAD") != "":
		a.addrs, a.source = metaclient.ParseAddrs(a.getenv("CAIRN_METAD")), "CAIRN_METAD"
	default:
		a.addrs, a.source = devMetadAddrs(), "default"
	}
	if len(a.addrs) == 0 {
		return nil, fmt.Errorf("%s names no metad address: give ADDR,... (host:port of metad gRPC)", a.source)
	}
	if a.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	if err := a.probe(ctx); err != nil {
		return nil, err
	}
	return metaclient.New(a.addrs, metaclient.Options{ConnectTimeout: min(a.timeout, 2*time.Second)})
}

// probe dials every address at once and succeeds when any accepts a TCP
// connection.
func (a *admin) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(a.timeout, 3*time.Second))
	defer cancel()
	errs := make([]error, len(a.addrs))
	var wg sync.WaitGroup
	for i, addr := range a.addrs {
		wg.Go(func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				_ = c.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("cannot reach metad at %s: %s (%s)", strings.Join(a.addrs, ","), rootCause(errs[0]), a.reachHint())
}

func (a *admin) reachHint() string {
	if a.source == "default" {
		return "is `cairn dev` running? set --metad or CAIRN_METAD"
	}
	return "is metad running there? check " + a.source
}

// rootCause is the innermost error's text: "connection refused", not the
// whole chain of dial and gRPC wrappers.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// call runs one RPC with the per-call timeout and turns its failure into a
// one-line error saying what went wrong and what to do.
func call[T any](ctx context.Context, a *admin, rpc string, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	v, err := fn(ctx)
	if err != nil {
		return v, a.explain(rpc, err)
	}
	return v, nil
}

// unimplementedError is an RPC this metad does not serve.
type unimplementedError struct{ rpc, addrs string }

func (e *unimplementedError) Error() string {
	return fmt.Sprintf("metad at %s does not serve %s yet (it is older than this cairn); upgrade metad", e.addrs, e.rpc)
}

func isUnimplemented(err error) bool {
	var u *unimplementedError
	return errors.As(err, &u)
}

func (a *admin) explain(rpc string, err error) error {
	addrs := strings.Join(a.addrs, ",")
	var nl *metaerr.NotLeaderError
	switch {
	case status.Code(err) == codes.Unimplemented:
		return &unimplementedError{rpc: rpc, addrs: addrs}
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded:
		// The deadline travels to metad: its answer that the deadline
		// passed can arrive before the client's own context notices.
		last := ""
		if errors.As(err, &nl) {
			last = ": no metad leader (an election is under way, or too few members are up)"
		} else if _, after, ok := strings.Cut(err.Error(), "last error: "); ok {
			last = ": " + strings.TrimSuffix(after, ")")
		}
		return fmt.Errorf("metad at %s did not answer %s within %v%s (raise --timeout; `cairn metad members` shows the members and the leader)", addrs, rpc, a.timeout, oneLine(last))
	case errors.As(err, &nl):
		return fmt.Errorf("%s: no metad leader (an election is under way, or too few members are up); try again, or see `cairn metad members`", rpc)
	}
	var me *metaerr.Error
	if errors.As(err, &me) {
		return err // a metadata condition, kept for errors.Is; commands add hints
	}
	if st, ok := status.FromError(err); ok {
		if st.Code() == codes.Unavailable {
			return fmt.Errorf("%s: metad at %s is unavailable: %s (%s)", rpc, addrs, oneLine(st.Message()), a.reachHint())
		}
		return fmt.Errorf("%s: %s: %s", rpc, st.Code(), oneLine(st.Message()))
	}
	return fmt.Errorf("%s: %s", rpc, oneLine(err.Error()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// emit prints v as JSON with --json, else calls human.
func (a *admin) emit(v any, human func(io.Writer) error) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return human(a.stdout)
}

// withClient wraps a command body that needs a metad client.
func (a *admin) withClient(fn func(ctx context.Context, cl *metaclient.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cl, err := a.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer cl.Close()
		return fn(cmd.Context(), cl, args)
	}
}

// adminCmd makes a top-level admin command carrying the shared flags.
func (a *admin) adminCmd(cmd *cobra.Command) *cobra.Command {
	a.addFlags(cmd.PersistentFlags())
	return cmd
}
