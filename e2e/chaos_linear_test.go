package e2e

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability check: each key is a register, checked on its own
// (porcupine partitions the history by key). Writes that failed are
// operations of unknown outcome: a nondeterministic step that either
// takes effect or does nothing. One that got an answer must do so within
// its interval; one that got none (timeout, connection cut) is given a
// return time after the end of the history, so it may take effect at any
// time after its call.

// regInput is a register operation.
type regInput struct {
	kind  opKind // opPut, opDelete or opGet
	val   int64  // put: the value written
	maybe bool   // a write of unknown outcome
	// get of a range starting at rngStart (>= 0) that answered 416.
	rngStart int64
}

// regOutput is what a get returned: a value (absentValue for NoSuchKey),
// or an unsatisfiable range.
type regOutput struct {
	val   int64
	unsat bool
}

func registerModel(reg *registry) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{absentValue} },
		Step: func(state, input, output any) []any {
			s, in := state.(int64), input.(regInput)
			switch in.kind {
			case opPut, opDelete:
				v := absentValue
				if in.kind == opPut {
					v = in.val
				}
				if in.maybe && v != s {
					return []any{s, v}
				}
				return []any{v}
			default:
				out := output.(regOutput)
				if out.unsat {
					// 416: the object exists and is no longer than the start.
					if s != absentValue && reg.sizeOf(s) <= in.rngStart {
						return []any{s}
					}
					return nil
				}
				if out.val == s {
					return []any{s}
				}
				return nil
			}
		},
		DescribeOperation: func(input, output any) string {
			in := input.(regInput)
			switch in.kind {
			case opPut:
				return fmt.Sprintf("put(%s)%s", valueName(in.val), maybeTag(in.maybe))
			case opDelete:
				return "delete()" + maybeTag(in.maybe)
			}
			out := output.(regOutput)
			if out.unsat {
				return fmt.Sprintf("get(range from %d) -> 416", in.rngStart)
			}
			return "get() -> " + valueName(out.val)
		},
		DescribeState: func(state any) string { return valueName(state.(int64)) },
	}
	return nm.ToModel()
}

func maybeTag(maybe bool) string {
	if maybe {
		return " ?"
	}
	return ""
}

// linearResult is the outcome of the check.
type linearResult struct {
	Keys    int    `json:"keys"`
	Ok      int    `json:"ok"`
	Illegal int    `json:"illegal"`
	Unknown int    `json:"unknown"`
	Visual  string `json:"visualization,omitempty"`
	Failed  []string
}

// checkLinearizable checks each key's register history; for a key found
// not linearizable it writes porcupine's visualization to a file.
func checkLinearizable(reg *registry, ops []*op, keys []string, t0 time.Time, timeout time.Duration) linearResult {
	per := byKey(ops, keys)
	var end time.Time
	for _, o := range ops {
		if o.end.After(end) {
			end = o.end
		}
	}
	never := end.Sub(t0).Nanoseconds() + int64(time.Second)
	model := registerModel(reg)
	res := linearResult{Keys: len(per)}
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var hist []porcupine.Operation
		clients := 0
		for _, o := range per[k] {
			po := porcupine.Operation{ClientId: o.client, Call: o.start.Sub(t0).Nanoseconds(), Return: o.end.Sub(t0).Nanoseconds(), Metadata: o.id}
			switch {
			case o.kind == opGet:
				if o.outcome != acked {
					continue // a read without an answer says nothing
				}
				po.Input = regInput{kind: opGet, rngStart: o.rngStart}
				po.Output = regOutput{val: o.got, unsat: o.unsat}
			case o.isWrite():
				in := regInput{kind: o.kind, val: o.val, maybe: o.outcome != acked}
				if o.outcome == failedUnanswered {
					po.Return = never
				}
				po.Input, po.Output = in, regOutput{}
			default:
				continue
			}
			clients = max(clients, o.client+1)
			hist = append(hist, po)
		}
		// Operations of unknown end overlap what their client did next:
		// give each a client lane of its own for the visualization.
		for i := range hist {
			if hist[i].Return == never {
				hist[i].ClientId = clients
				clients++
			}
		}
		result, info := porcupine.CheckOperationsVerbose(model, hist, timeout)
		switch result {
		case porcupine.Ok:
			res.Ok++
		case porcupine.Illegal:
			res.Illegal++
			res.Failed = append(res.Failed, k)
			if res.Visual == "" {
				if f, err := os.CreateTemp("", "cairn-chaos-linearizability-*.html"); err == nil {
					if err := porcupine.Visualize(model, info, f); err == nil {
						res.Visual = f.Name()
					}
					f.Close()
				}
			}
		default:
			res.Unknown++
		}
	}
	return res
}
