package s3bench

import "syscall"

const oDirect = syscall.O_DIRECT
