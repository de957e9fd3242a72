// Package blobreg connects a blob node to the metadata service: it
// implements blob.Registrar over the metadata gRPC API, so that package blob
// stays free of metadata imports and the daemon, `cairn dev` and the test
// cluster share one adapter.
package blobreg

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/blob"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Registrar registers a blob node with metad and sends its heartbeats.
type Registrar struct {
	meta pb.MetadataClient
	id   string
}

var _ blob.Registrar = (*Registrar)(nil)

// New returns the Registrar of blob node id over meta (a metaclient.Client,
// which follows the leader).
func New(meta pb.MetadataClient, id string) *Registrar { return &Registrar{meta: meta, id: id} }

// Register records the node in the cluster map.
func (r *Registrar) Register(ctx context.Context, n blob.NodeInfo) error {
	_, err := r.meta.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: &pb.Node{
		Id:            n.ID,
		Address:       n.Addr,
		Zone:          n.Zone,
		Rack:          n.Rack,
		CapacityBytes: n.Usage.Capacity,
		UsedBytes:     n.Usage.Used,
		ChunkCount:    n.Usage.Chunks,
	}})
	if err != nil {
		return fmt.Errorf("register blob node %s: %w", n.ID, err)
	}
	return nil
}

// Heartbeat reports usage; an unknown node error makes the node register
// again.
func (r *Registrar) Heartbeat(ctx context.Context, u blob.Usage) error {
	_, err := r.meta.Heartbeat(ctx, &pb.HeartbeatRequest{
		Id: r.id, CapacityBytes: u.Capacity, UsedBytes: u.Used, ChunkCount: u.Chunks,
	})
	if errors.Is(err, metaerr.ErrNoSuchNode) {
		return fmt.Errorf("heartbeat of %s: %w (%w)", r.id, blob.ErrUnknownNode, err)
	}
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", r.id, err)
	}
	return nil
}
