//go:build !race

package e2e

// raceBuild: this test binary runs without the race detector, and so do the
// daemons.
const raceBuild = false
