package bucketpolicy

import "strings"

// The actions of the common public-read policy, for the callers that
// write one.
const (
	GetObject         = "s3:GetObject"
	ListBucket        = "s3:ListBucket"
	GetBucketLocation = "s3:GetBucketLocation"
)

// resourceType is what an S3 action applies to: S3 refuses a statement
// whose action has no resource of its type ("Action does not apply to
// any resource(s) in statement").
type resourceType int

const (
	// account-level actions (ListAllMyBuckets, jobs, access points):
	// valid names, but no bucket policy statement can apply them.
	onAccount resourceType = iota
	onBucket
	onObject
)

// s3Actions are S3's action names as the IAM service authorization
// reference spells them, by what they apply to. A policy naming an
// action not here, or a wildcard matching none, is malformed ("Policy
// has invalid action"), as on S3.
//
// lowerActions maps the lower-cased names to S3's spelling: actions are
// matched case-insensitively.
var s3Actions, lowerActions = actionTables()

// actionTables builds s3Actions and lowerActions from three lists, which
// read better than 120 lines of "name: type".
func actionTables() (map[string]resourceType, map[string]string) {
	s3Actions, lowerActions := map[string]resourceType{}, map[string]string{}
	for _, a := range strings.Fields(`
		AbortMultipartUpload BypassGovernanceRetention DeleteObject
		DeleteObjectTagging DeleteObjectVersion DeleteObjectVersionTagging
		GetObject GetObjectAcl GetObjectAttributes GetObjectLegalHold
		GetObjectRetention GetObjectTagging GetObjectTorrent GetObjectVersion
		GetObjectVersionAcl GetObjectVersionAttributes
		GetObjectVersionForReplication GetObjectVersionTagging
		GetObjectVersionTorrent InitiateReplication ListMultipartUploadParts
		ObjectOwnerOverrideToBucketOwner PutObject PutObjectAcl
		PutObjectLegalHold PutObjectRetention PutObjectTagging
		PutObjectVersionAcl PutObjectVersionTagging ReplicateDelete
		ReplicateObject ReplicateTags RestoreObject`) {
		s3Actions["s3:"+a] = onObject
	}
	for _, a := range strings.Fields(`
		CreateBucket CreateBucketMetadataTableConfiguration DeleteBucket
		DeleteBucketMetadataTableConfiguration DeleteBucketOwnershipControls
		DeleteBucketPolicy DeleteBucketWebsite GetAccelerateConfiguration
		GetAnalyticsConfiguration GetBucketAcl GetBucketCORS GetBucketLocation
		GetBucketLogging GetBucketMetadataTableConfiguration
		GetBucketNotification GetBucketObjectLockConfiguration
		GetBucketOwnershipControls GetBucketPolicy GetBucketPolicyStatus
		GetBucketPublicAccessBlock GetBucketRequestPayment GetBucketTagging
		GetBucketVersioning GetBucketWebsite GetEncryptionConfiguration
		GetIntelligentTieringConfiguration GetInventoryConfiguration
		GetLifecycleConfiguration GetMetricsConfiguration
		GetReplicationConfiguration ListBucket ListBucketMultipartUploads
		ListBucketVersions PutAccelerateConfiguration PutAnalyticsConfiguration
		PutBucketAcl PutBucketCORS PutBucketLogging PutBucketNotification
		PutBucketObjectLockConfiguration PutBucketOwnershipControls
		PutBucketPolicy PutBucketPublicAccessBlock PutBucketRequestPayment
		PutBucketTagging PutBucketVersioning PutBucketWebsite
		PutEncryptionConfiguration PutIntelligentTieringConfiguration
		PutInventoryConfiguration PutLifecycleConfiguration
		PutMetricsConfiguration PutReplicationConfiguration`) {
		s3Actions["s3:"+a] = onBucket
	}
	for _, a := range strings.Fields(`
		ListAllMyBuckets GetAccountPublicAccessBlock PutAccountPublicAccessBlock
		CreateJob DescribeJob ListJobs UpdateJobPriority UpdateJobStatus
		CreateAccessPoint DeleteAccessPoint GetAccessPoint ListAccessPoints
		ListStorageLensConfigurations`) {
		s3Actions["s3:"+a] = onAccount
	}
	for a := range s3Actions {
		lowerActions[strings.ToLower(a)] = a
	}
	return s3Actions, lowerActions
}

// IsAction reports whether action is an S3 action as spelled in the
// reference ("s3:GetObject"), one a request may be evaluated for.
func IsAction(action string) bool {
	_, ok := s3Actions[action]
	return ok
}

// IsObjectAction reports whether action applies to objects (its resource
// is BUCKET/KEY) rather than to the bucket.
func IsObjectAction(action string) bool { return s3Actions[action] == onObject }

// expandAction is the set of S3 actions pattern names (wildcards * and ?,
// case-insensitive); empty when it names none.
func expandAction(pattern string) []string {
	p := strings.ToLower(pattern)
	if !strings.ContainsAny(p, "*?") {
		if a, ok := lowerActions[p]; ok {
			return []string{a}
		}
		return nil
	}
	var out []string
	for low, a := range lowerActions {
		if wildcardMatch(p, low) {
			out = append(out, a)
		}
	}
	return out
}
