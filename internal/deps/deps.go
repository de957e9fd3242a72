package deps

import (
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/gorilla/mux"
	_ "github.com/hashicorp/raft"
	_ "github.com/klauspost/reedsolomon"
	_ "github.com/minio/crc64nvme"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "google.golang.org/grpc"
)
