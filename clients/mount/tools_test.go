package mount_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnstore/cairn/internal/testcluster"
)

// tool is a way of mounting a bucket.
type tool struct {
	name string // also the binary, and what its User-Agent contains
	// writesMarkers is whether mkdir stores a "dir/" marker object. s3fs
	// does; rclone 1.60 keeps a directory without files in its VFS only
	// (later versions write markers only with --s3-directory-markers).
	writesMarkers bool
	mount         func(t *testing.T, e *env, bucket string) *mounted
}

// bigMiB is the size of the largest file testFiles writes. Both tools
// upload it in parts; 200 MiB (rclone's own --s3-upload-cutoff, where its
// parts start without the flag below) takes minutes through a -race
// gateway, so the default run uses less and lowers rclone's cutoff.
var bigMiB = flag.Int("mount.big-mib", 40, "size in MiB of the largest file the mount tests write (more than 25, s3fs's multipart threshold)")

func bigFileBytes() int { return *bigMiB * mib }

// rcloneCutoff is the --s3-upload-cutoff that makes rclone upload the
// largest file in parts: its own default, 200 MiB, unless the file is
// smaller.
func rcloneCutoff() string {
	return fmt.Sprintf("%dMi", min(200, *bigMiB/2))
}

var tools = []tool{
	{name: "rclone", mount: mountRclone},
	{name: "s3fs", writesMarkers: true, mount: mountS3fs},
}

// mountRclone mounts bucket with `rclone mount` as the README shows it,
// with the settings of the environment out of the way: no config file, no
// AWS_CA_BUNDLE (rclone 1.60 fails on it with an http endpoint), a
// private cache directory.
func mountRclone(t *testing.T, e *env, bucket string) *mounted {
	t.Helper()
	// rclone 1.60 mounts through the fuse 2 name, fusermount (fuse3
	// installs it as a link to fusermount3).
	requireFUSE(t, "rclone", "fusermount")
	dir, work := mountDir(t), t.TempDir()
	logFile := filepath.Join(work, "rclone.log")
	return start(t, "rclone", dir, logFile, baseEnv(t), "rclone", "mount",
		"--config", os.DevNull,
		"--s3-provider", "Other",
		"--s3-endpoint", e.url,
		"--s3-access-key-id", testcluster.AccessKey,
		"--s3-secret-access-key", testcluster.SecretKey,
		"--s3-region", "us-east-1",
		"--vfs-cache-mode", "writes",
		// Upload 1 s after the last close rather than 5 s: the same
		// requests, sooner; the tests wait for every upload.
		"--vfs-write-back", "1s",
		"--s3-upload-cutoff", rcloneCutoff(),
		"--cache-dir", filepath.Join(work, "cache"),
		"--log-file", logFile, "-v",
		":s3:"+bucket, dir)
}

// mountS3fs mounts bucket with s3fs as the README shows it, in the
// foreground.
func mountS3fs(t *testing.T, e *env, bucket string) *mounted {
	t.Helper()
	requireFUSE(t, "s3fs")
	dir, work := mountDir(t), t.TempDir()
	passwd := filepath.Join(work, "passwd")
	// s3fs refuses a password file others can read.
	if err := os.WriteFile(passwd, []byte(testcluster.AccessKey+":"+testcluster.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(work, "s3fs.log")
	return start(t, "s3fs", dir, logFile, baseEnv(t), "s3fs", bucket, dir, "-f",
		"-o", "passwd_file="+passwd,
		"-o", "url="+e.url,
		"-o", "use_path_request_style",
		"-o", "endpoint=us-east-1",
		"-o", "dbglevel=warn",
		"-o", "logfile="+logFile)
}
