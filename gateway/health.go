package gateway

import (
	"context"
	"fmt"
	"net/http"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// healthz answers 200 when metad answers and the cluster map has enough
// up blob nodes to meet a write quorum (k+1 of the default scheme, k when
// it has no parity), 503 with the reason otherwise.
func (d *routerDeps) healthz(w http.ResponseWriter, r *http.Request) {
	stateOf(r).op = "Healthz"
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := d.meta.GetClusterMap(ctx, &pb.GetClusterMapRequest{})
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "metadata service unreachable: %v\n", err)
		return
	}
	cm := resp.GetClusterMap()
	up := 0
	for _, n := range cm.GetNodes() {
		if n.GetState() == pb.NodeState_NODE_STATE_UP {
			up++
		}
	}
	k, m := int(cm.GetDefaultScheme().GetK()), int(cm.GetDefaultScheme().GetM())
	need := k + 1
	if m == 0 {
		need = k
	}
	if k == 0 || up < need {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "%d blob nodes up, %d needed (scheme %d+%d)\n", up, need, k, m)
		return
	}
	fmt.Fprintf(w, "ok: %d blob nodes up, scheme %d+%d, epoch %d\n", up, k, m, cm.GetEpoch())
}
