package metadatapb

import (
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
)

// NewItemStatus carries err's gRPC status (code, message, details) in a
// message, for an answer that holds several outcomes; nil for nil.
func NewItemStatus(err error) *ItemStatus {
	if err == nil {
		return nil
	}
	st := status.Convert(err).Proto()
	return &ItemStatus{Code: st.GetCode(), Message: st.GetMessage(), Details: st.GetDetails()}
}

// Err is the gRPC status error s carries, as the call would have returned
// it on its own; nil for a nil s.
func (s *ItemStatus) Err() error {
	if s == nil {
		return nil
	}
	return status.ErrorProto(&spb.Status{Code: s.GetCode(), Message: s.GetMessage(), Details: s.GetDetails()})
}
