package s3bench

import (
	"fmt"
	"math/rand/v2"
)

// Op is one kind of S3 request the generator issues.
type Op string

// The operations, and the --op workloads named after them (plus "mixed").
const (
	OpPut    Op = "put"
	OpGet    Op = "get"
	OpStat   Op = "stat" // HeadObject
	OpDelete Op = "delete"
	OpList   Op = "list" // one ListObjectsV2 page
)

// Workloads accepted by Config.Workload.
const (
	WorkloadPut    = "put"
	WorkloadGet    = "get"
	WorkloadMixed  = "mixed"
	WorkloadList   = "list"
	WorkloadDelete = "delete"
)

// Mix weighs the operations of the mixed workload (any positive
// integers; percentages by convention).
type Mix struct {
	Get, Put, Stat, Delete int
}

// DefaultMix is 45% GET, 30% PUT, 15% STAT, 10% DELETE.
var DefaultMix = Mix{Get: 45, Put: 30, Stat: 15, Delete: 10}

// Validate checks that the weights are non-negative and not all zero.
func (m Mix) Validate() error {
	if m.Get < 0 || m.Put < 0 || m.Stat < 0 || m.Delete < 0 || m.total() == 0 {
		return fmt.Errorf("mix %+v: weights must be non-negative and not all zero", m)
	}
	return nil
}

func (m Mix) total() int { return m.Get + m.Put + m.Stat + m.Delete }

// Pick draws an operation with probability proportional to its weight.
func (m Mix) Pick(r *rand.Rand) Op {
	n := r.IntN(m.total())
	switch {
	case n < m.Get:
		return OpGet
	case n < m.Get+m.Put:
		return OpPut
	case n < m.Get+m.Put+m.Stat:
		return OpStat
	default:
		return OpDelete
	}
}
