package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// registrar is blob.Registrar over the metadata API. The client passed in
// (metaclient) finds the leader and follows redirects.
type registrar struct {
	md metadatapb.MetadataClient
	id string
}

var _ blob.Registrar = (*registrar)(nil)

func (r *registrar) Register(ctx context.Context, n blob.NodeInfo) error {
	_, err := r.md.RegisterNode(ctx, &metadatapb.RegisterNodeRequest{Node: &metadatapb.Node{
		Id:            n.ID,
		Address:       n.Addr,
		Zone:          n.Zone,
		Rack:          n.Rack,
		CapacityBytes: n.Usage.Capacity,
		UsedBytes:     n.Usage.Used,
		ChunkCount:    n.Usage.Chunks,
	}})
	if err != nil {
		return fmt.Errorf("register node %s with metad: %w", n.ID, err)
	}
	return nil
}

func (r *registrar) Heartbeat(ctx context.Context, u blob.Usage) error {
	_, err := r.md.Heartbeat(ctx, &metadatapb.HeartbeatRequest{
		Id:            r.id,
		CapacityBytes: u.Capacity,
		UsedBytes:     u.Used,
		ChunkCount:    u.Chunks,
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, metaerr.ErrNoSuchNode):
		return fmt.Errorf("heartbeat of node %s: %w: %w", r.id, blob.ErrUnknownNode, err)
	default:
		return fmt.Errorf("heartbeat of node %s: %w", r.id, err)
	}
}
