package s3err

import "net/http"

// Code is one S3 error condition: the code string clients switch on, the
// HTTP status it travels with, and S3's default message. Codes are
// comparable values; a Code is itself an error, so a handler may return
// s3err.NoSuchKey directly and callers may test errors.Is(err, s3err.NoSuchKey)
// whether they got the bare Code or an *Error carrying details.
type Code struct {
	Name    string
	Status  int
	Message string
}

func (c Code) Error() string { return c.Name + ": " + c.Message }

// Codes and statuses follow the "List of error codes" of the Amazon S3 API
// reference (ErrorResponses.html). Messages are S3's wording where it has a
// stable one.
var (
	AccessControlListNotSupported = Code{"AccessControlListNotSupported", http.StatusBadRequest, "The bucket does not allow ACLs."}
	AccessDenied                  = Code{"AccessDenied", http.StatusForbidden, "Access Denied"}
	// QuotaExceeded: the write would take its bucket over its quota (the
	// code Ceph's RGW answers; S3 has no bucket quotas).
	QuotaExceeded = Code{"QuotaExceeded", http.StatusForbidden, "The bucket's quota does not allow this write."}
	// AccessForbidden answers a CORS preflight no rule of the bucket allows.
	AccessForbidden                   = Code{"AccessForbidden", http.StatusForbidden, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."}
	AuthorizationHeaderMalformed      = Code{"AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header you provided is invalid."}
	AuthorizationQueryParametersError = Code{"AuthorizationQueryParametersError", http.StatusBadRequest, "Error parsing the query-string authentication parameters."}
	BadRequest                        = Code{"BadRequest", http.StatusBadRequest, "Bad Request"}
	BadDigest                         = Code{"BadDigest", http.StatusBadRequest, "The Content-MD5 you specified did not match what we received."}
	BucketAlreadyExists               = Code{"BucketAlreadyExists", http.StatusConflict, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."}
	BucketAlreadyOwnedByYou           = Code{"BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."}
	BucketNotEmpty                    = Code{"BucketNotEmpty", http.StatusConflict, "The bucket you tried to delete is not empty."}
	ConditionalRequestConflict        = Code{"ConditionalRequestConflict", http.StatusConflict, "A conflicting conditional operation is currently in progress against this resource. Try again."}
	EntityTooLarge                    = Code{"EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."}
	EntityTooSmall                    = Code{"EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."}
	ExpiredToken                      = Code{"ExpiredToken", http.StatusBadRequest, "The provided token has expired."}
	IncompleteBody                    = Code{"IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	InternalError                     = Code{"InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again."}
	InvalidAccessKeyID                = Code{"InvalidAccessKeyId", http.StatusForbidden, "The AWS access key Id you provided does not exist in our records."}
	InvalidArgument                   = Code{"InvalidArgument", http.StatusBadRequest, "Invalid Argument"}
	InvalidBucketName                 = Code{"InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid."}
	InvalidBucketState                = Code{"InvalidBucketState", http.StatusConflict, "The request is not valid with the current state of the bucket."}
	InvalidDigest                     = Code{"InvalidDigest", http.StatusBadRequest, "The Content-MD5 you specified is not valid."}
	InvalidLocationConstraint         = Code{"InvalidLocationConstraint", http.StatusBadRequest, "The specified location constraint is not valid."}
	InvalidObjectState                = Code{"InvalidObjectState", http.StatusForbidden, "The operation is not valid for the current state of the object."}
	InvalidPart                       = Code{"InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."}
	InvalidPolicyDocument             = Code{"InvalidPolicyDocument", http.StatusBadRequest, "The content of the form does not meet the conditions specified in the policy document."}
	InvalidPartOrder                  = Code{"InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. Parts list must be specified in order by part number."}
	InvalidRange                      = Code{"InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable"}
	InvalidRequest                    = Code{"InvalidRequest", http.StatusBadRequest, "Invalid Request"}
	InvalidStorageClass               = Code{"InvalidStorageClass", http.StatusBadRequest, "The storage class you specified is not valid."}
	InvalidTag                        = Code{"InvalidTag", http.StatusBadRequest, "The tag provided was not a valid tag."}
	InvalidToken                      = Code{"InvalidToken", http.StatusBadRequest, "The provided token is malformed or otherwise invalid."}
	InvalidURI                        = Code{"InvalidURI", http.StatusBadRequest, "Couldn't parse the specified URI."}
	KeyTooLongError                   = Code{"KeyTooLongError", http.StatusBadRequest, "Your key is too long."}
	MalformedPOSTRequest              = Code{"MalformedPOSTRequest", http.StatusBadRequest, "The body of your POST request is not well-formed multipart/form-data."}
	MalformedTrailerError             = Code{"MalformedTrailerError", http.StatusBadRequest, "The request contained trailing data that was not well-formed or did not conform to our published schema."}
	MalformedPolicy                   = Code{"MalformedPolicy", http.StatusBadRequest, "Policies must be valid JSON and the first byte must be '{'."}
	MalformedXML                      = Code{"MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."}
	MaxMessageLengthExceeded          = Code{"MaxMessageLengthExceeded", http.StatusBadRequest, "Your request was too big."}
	MetadataTooLarge                  = Code{"MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size."}
	MethodNotAllowed                  = Code{"MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."}
	MissingContentLength              = Code{"MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header."}
	MissingRequestBodyError           = Code{"MissingRequestBodyError", http.StatusBadRequest, "Request Body is empty."}
	MissingSecurityHeader             = Code{"MissingSecurityHeader", http.StatusBadRequest, "Your request was missing a required header."}
	NoSuchBucket                      = Code{"NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist"}
	NoSuchBucketPolicy                = Code{"NoSuchBucketPolicy", http.StatusNotFound, "The bucket policy does not exist."}
	NoSuchCORSConfiguration           = Code{"NoSuchCORSConfiguration", http.StatusNotFound, "The CORS configuration does not exist."}
	NoSuchKey                         = Code{"NoSuchKey", http.StatusNotFound, "The specified key does not exist."}
	NoSuchObjectLockConfiguration     = Code{"NoSuchObjectLockConfiguration", http.StatusNotFound, "The specified object does not have a ObjectLock configuration."}
	NoSuchLifecycleConfiguration      = Code{"NoSuchLifecycleConfiguration", http.StatusNotFound, "The lifecycle configuration does not exist."}
	NoSuchTagSet                      = Code{"NoSuchTagSet", http.StatusNotFound, "The TagSet does not exist."}
	NoSuchUpload                      = Code{"NoSuchUpload", http.StatusNotFound, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."}
	NoSuchVersion                     = Code{"NoSuchVersion", http.StatusNotFound, "The specified version does not exist."}
	NoSuchWebsiteConfiguration        = Code{"NoSuchWebsiteConfiguration", http.StatusNotFound, "The specified bucket does not have a website configuration."}
	ObjectLockConfigurationNotFound   = Code{"ObjectLockConfigurationNotFoundError", http.StatusNotFound, "Object Lock configuration does not exist for this bucket."}
	ReplicationConfigurationNotFound  = Code{"ReplicationConfigurationNotFoundError", http.StatusNotFound, "The replication configuration was not found."}
	SSEConfigurationNotFound          = Code{"ServerSideEncryptionConfigurationNotFoundError", http.StatusNotFound, "The server side encryption configuration was not found."}
	NotImplemented                    = Code{"NotImplemented", http.StatusNotImplemented, "A header you provided implies functionality that is not implemented."}
	NotModified                       = Code{"NotModified", http.StatusNotModified, "Not Modified"}
	PreconditionFailed                = Code{"PreconditionFailed", http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold"}
	RequestTimeTooSkewed              = Code{"RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the server's time is too large."}
	RequestTimeout                    = Code{"RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period."}
	ServiceUnavailable                = Code{"ServiceUnavailable", http.StatusServiceUnavailable, "Please reduce your request rate."}
	SignatureDoesNotMatch             = Code{"SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	SlowDown                          = Code{"SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate."}
	TooManyBuckets                    = Code{"TooManyBuckets", http.StatusBadRequest, "You have attempted to create more buckets than allowed."}
	XAmzContentSHA256Mismatch         = Code{"XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."}
)

// All lists every Code, for lookups by name and for tests.
var All = []Code{
	AccessControlListNotSupported, AccessDenied, AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
	BadDigest, BadRequest, BucketAlreadyExists, BucketAlreadyOwnedByYou, BucketNotEmpty,
	ConditionalRequestConflict, EntityTooLarge, EntityTooSmall, ExpiredToken,
	IncompleteBody, InternalError, InvalidAccessKeyID, InvalidArgument,
	InvalidBucketName, InvalidBucketState, InvalidDigest, InvalidLocationConstraint,
	InvalidObjectState, InvalidPart, InvalidPartOrder, InvalidPolicyDocument, InvalidRange, InvalidRequest,
	InvalidStorageClass, InvalidTag, InvalidToken, InvalidURI, KeyTooLongError,
	MalformedPOSTRequest, MalformedPolicy, MalformedTrailerError, MalformedXML, MaxMessageLengthExceeded, MetadataTooLarge,
	MethodNotAllowed, MissingContentLength, MissingRequestBodyError,
	MissingSecurityHeader, AccessForbidden, QuotaExceeded, NoSuchBucket, NoSuchBucketPolicy, NoSuchCORSConfiguration,
	NoSuchKey, NoSuchLifecycleConfiguration, NoSuchObjectLockConfiguration, NoSuchTagSet, NoSuchUpload,
	NoSuchVersion, NoSuchWebsiteConfiguration, NotImplemented, NotModified,
	ObjectLockConfigurationNotFound, PreconditionFailed, ReplicationConfigurationNotFound,
	RequestTimeTooSkewed, RequestTimeout, SSEConfigurationNotFound, ServiceUnavailable, SignatureDoesNotMatch,
	SlowDown, TooManyBuckets, XAmzContentSHA256Mismatch,
}

// Lookup finds a Code by its S3 name.
func Lookup(name string) (Code, bool) {
	for _, c := range All {
		if c.Name == name {
			return c, true
		}
	}
	return Code{}, false
}
