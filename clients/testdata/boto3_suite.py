"""boto3 with its default settings against a Cairn S3 gateway.

Driven by the Go test TestBoto3 (clients/boto3_test.go), which checks the
results. Configuration comes from the environment:

  CAIRN_ENDPOINT  the gateway URL (http or https; AWS_CA_BUNDLE is the
                  certificate to trust over https)
  CAIRN_BUCKET    a bucket name that does not exist yet
  CAIRN_DATA      a directory holding small.bin, 1m.bin and 30m.bin
  CAIRN_KEYS      how many keys to create concurrently for the listing
  CAIRN_APP_KEY   an access key (and CAIRN_APP_SECRET its secret) besides
                  the root one, allowed to create buckets and nothing else

Credentials and region come from the standard AWS_* variables. Each step
runs even if an earlier one failed; the script prints one JSON object,
{"steps": {name: {...}}}, where a failed step has "ok": false and either
the S3 error ("code", "status", "message") or a Python "exception".
"""

import concurrent.futures
import hashlib
import json
import os
import ssl
import sys
import time
import traceback
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT = os.environ["CAIRN_ENDPOINT"]
BUCKET = os.environ["CAIRN_BUCKET"]
DATA = os.environ["CAIRN_DATA"]
NKEYS = int(os.environ["CAIRN_KEYS"])
APP_KEY = os.environ["CAIRN_APP_KEY"]
APP_SECRET = os.environ["CAIRN_APP_SECRET"]

# Key suffixes that exercise URL encoding in listings (boto3 asks for
# EncodingType=url and decodes the answer).
SUFFIXES = ["", "+plus", " space", "\u00e9t\u00e9", "~tilde", "%25pct"]

s3 = boto3.client("s3", endpoint_url=ENDPOINT)
steps = {}


def step(fn):
    """Runs fn, recording its result (a dict) or its error under fn's name."""
    start = time.monotonic()
    try:
        out = fn() or {}
        out["ok"] = True
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        out = {
            "ok": False,
            "code": err.get("Code", ""),
            "message": err.get("Message", ""),
            "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0),
        }
    except Exception:  # noqa: BLE001 - every failure goes back to Go
        out = {"ok": False, "exception": traceback.format_exc()}
    out["took"] = round(time.monotonic() - start, 3)
    steps[fn.__name__] = out
    return fn


def read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def client_error(fn):
    """Calls fn, which must raise a ClientError, and describes the error."""
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return {
            "code": e.response.get("Error", {}).get("Code", ""),
            "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0),
        }
    raise AssertionError("the call succeeded; it should have failed")


def many_key(i):
    return "many/%d/%05d%s" % (i % 7, i, SUFFIXES[i % len(SUFFIXES)])


@step
def create_bucket():
    r = s3.create_bucket(Bucket=BUCKET)
    return {"status": r["ResponseMetadata"]["HTTPStatusCode"]}


@step
def put_small():
    r = s3.put_object(Bucket=BUCKET, Key="small.bin", Body=read("small.bin"))
    return {"etag": r["ETag"], "crc32": r.get("ChecksumCRC32", "")}


@step
def put_1m():
    r = s3.put_object(Bucket=BUCKET, Key="1m.bin", Body=read("1m.bin"))
    return {"etag": r["ETag"], "crc32": r.get("ChecksumCRC32", "")}


@step
def get_full():
    r = s3.get_object(Bucket=BUCKET, Key="1m.bin")
    body = r["Body"].read()
    return {"sha256": sha256(body), "length": r["ContentLength"], "etag": r["ETag"]}


@step
def get_range():
    r = s3.get_object(Bucket=BUCKET, Key="1m.bin", Range="bytes=1000-2047")
    body = r["Body"].read()
    return {
        "sha256": sha256(body),
        "length": r["ContentLength"],
        "content_range": r.get("ContentRange", ""),
        "status": r["ResponseMetadata"]["HTTPStatusCode"],
    }


@step
def head():
    r = s3.head_object(Bucket=BUCKET, Key="1m.bin", ChecksumMode="ENABLED")
    return {"length": r["ContentLength"], "etag": r["ETag"], "crc32": r.get("ChecksumCRC32", "")}


@step
def upload_download_file():
    # s3transfer's defaults: multipart above 8 MiB, 8 MiB parts, 10 threads.
    s3.upload_file(os.path.join(DATA, "30m.bin"), BUCKET, "30m.bin")
    out = os.path.join(DATA, "30m.out")
    s3.download_file(BUCKET, "30m.bin", out)
    h = s3.head_object(Bucket=BUCKET, Key="30m.bin", ChecksumMode="ENABLED")
    return {
        "sha256": sha256_file(out),
        "etag": h["ETag"],
        "crc32": h.get("ChecksumCRC32", ""),
        "checksum_type": h.get("ChecksumType", ""),
    }


@step
def many_keys():
    keys = [many_key(i) for i in range(NKEYS)]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        for f in [pool.submit(s3.put_object, Bucket=BUCKET, Key=k, Body=k.encode()) for k in keys]:
            f.result()
    put_took = time.monotonic() - start
    listed, pages = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="many/"):
        pages += 1
        listed += [o["Key"] for o in page.get("Contents", [])]
    return {"keys": listed, "pages": pages, "put_took": round(put_took, 3)}


@step
def copy_object():
    r = s3.copy_object(Bucket=BUCKET, Key="copy/small.bin", CopySource={"Bucket": BUCKET, "Key": "small.bin"})
    body = s3.get_object(Bucket=BUCKET, Key="copy/small.bin")["Body"].read()
    return {"etag": r["CopyObjectResult"]["ETag"], "sha256": sha256(body)}


@step
def delete_objects():
    doomed = [many_key(i) for i in range(0, NKEYS, 24)] + ["copy/small.bin", "never/existed"]
    # DeleteObjects reports failures per key; an application retries the
    # keys whose error is transient (boto3 retries only whole requests).
    deleted, errors, retried, todo = [], [], 0, doomed
    for attempt in range(5):
        r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in todo]})
        deleted += [d["Key"] for d in r.get("Deleted", [])]
        transient = []
        for e in r.get("Errors", []):
            retryable = e.get("Code") in ("InternalError", "ServiceUnavailable", "SlowDown")
            (transient if retryable else errors).append(e)
        if not transient:
            break
        todo = [e["Key"] for e in transient]
        retried += len(todo)
        time.sleep(0.2 * (attempt + 1))
    else:
        errors += transient
    left = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="many/"):
        left += [o["Key"] for o in page.get("Contents", [])]
    copy_gone = client_error(lambda: s3.head_object(Bucket=BUCKET, Key="copy/small.bin"))
    return {
        "requested": doomed,
        "deleted": sorted(deleted),
        "errors": errors,
        "retried": retried,
        "left": left,
        "copy_head": copy_gone,
    }


@step
def presign():
    # botocore still presigns S3 URLs with SigV2 unless told otherwise.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "small.bin"}, ExpiresIn=600)
    return {"url": url}


@step
def presign_v4():
    v4 = boto3.client("s3", endpoint_url=ENDPOINT, config=botocore.config.Config(signature_version="s3v4"))
    url = v4.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "small.bin"}, ExpiresIn=600)
    return {"url": url}


def post_form(url, fields, filename, data):
    """POSTs fields and then a file as multipart/form-data, as a browser's
    form does; returns the status and the body."""
    boundary = "cairn-%d" % time.time_ns()
    body = b""
    for k, v in fields.items():
        body += b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
            boundary.encode(), k.encode(), v.encode())
    body += b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n' % (boundary.encode(), filename.encode())
    body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--%s--\r\n" % boundary.encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    ctx = None
    if url.startswith("https:"):
        ctx = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def presigned_post_with(client, name):
    data = b"uploaded through a browser form by " + name.encode()
    p = client.generate_presigned_post(
        BUCKET, "post/" + name + "/${filename}",
        Fields={"Content-Type": "text/plain"},
        Conditions=[{"Content-Type": "text/plain"}, ["content-length-range", 1, 10000]],
        ExpiresIn=600)
    status, body = post_form(p["url"], p["fields"], "hello.txt", data)
    out = {"status": status, "fields": sorted(p["fields"]), "message": body[:300].decode(errors="replace")}
    h = s3.head_object(Bucket=BUCKET, Key="post/" + name + "/hello.txt")
    out.update({"etag": h["ETag"], "length": h["ContentLength"], "content_type": h["ContentType"],
                "sha256": sha256(data)})
    return out


@step
def presigned_post():
    return presigned_post_with(s3, "default")


@step
def presigned_post_v4():
    v4 = boto3.client("s3", endpoint_url=ENDPOINT, config=botocore.config.Config(signature_version="s3v4"))
    return presigned_post_with(v4, "v4")


@step
def if_none_match():
    s3.put_object(Bucket=BUCKET, Key="cond/once", Body=b"first", IfNoneMatch="*")
    second = client_error(lambda: s3.put_object(Bucket=BUCKET, Key="cond/once", Body=b"second", IfNoneMatch="*"))
    body = s3.get_object(Bucket=BUCKET, Key="cond/once")["Body"].read()
    return {"second": second, "body": body.decode()}


@step
def bucket_config():
    acl = s3.get_bucket_acl(Bucket=BUCKET)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="cond/")
    return {
        "grants": [g["Permission"] for g in acl["Grants"]],
        "versions": ["%s@%s@%s" % (v["Key"], v["VersionId"], v["IsLatest"]) for v in versions.get("Versions", [])],
        "policy": client_error(lambda: s3.get_bucket_policy(Bucket=BUCKET)),
        "tags": len(s3.get_object_tagging(Bucket=BUCKET, Key="cond/once")["TagSet"]),
    }


@step
def access_key():
    def app_client(signature_version):
        return boto3.client(
            "s3",
            endpoint_url=ENDPOINT,
            aws_access_key_id=APP_KEY,
            aws_secret_access_key=APP_SECRET,
            config=botocore.config.Config(signature_version=signature_version),
        )

    v4, v2 = app_client("s3v4"), app_client("s3")
    bucket = BUCKET + "-app"
    v4.create_bucket(Bucket=bucket)
    v4.put_object(Bucket=bucket, Key="k", Body=b"app data")
    body = v2.get_object(Bucket=bucket, Key="k")["Body"].read()
    denied = client_error(lambda: v4.get_object(Bucket=BUCKET, Key="cond/once"))
    buckets = [b["Name"] for b in v2.list_buckets()["Buckets"]]
    v2.delete_object(Bucket=bucket, Key="k")
    v4.delete_bucket(Bucket=bucket)
    return {"body": body.decode(), "denied": denied, "buckets": buckets}


@step
def bucket_policy():
    """The root key puts a bucket policy giving the app key read of cond/*
    only over TLS; the app key reads by it over https and is denied over
    http. The policy is read back, its status asked, and deleted."""
    app = boto3.client(
        "s3", endpoint_url=ENDPOINT, aws_access_key_id=APP_KEY, aws_secret_access_key=APP_SECRET
    )
    objects = "arn:aws:s3:::%s/cond/*" % BUCKET
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "app-reads",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:user/%s" % APP_KEY},
                "Action": "s3:GetObject",
                "Resource": objects,
            },
            {
                "Sid": "tls-only",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": objects,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    stored = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    public = s3.get_bucket_policy_status(Bucket=BUCKET)["PolicyStatus"]["IsPublic"]
    out = {"fields": [stored["Statement"][1]["Sid"], str(public)]}
    try:
        out["body"] = app.get_object(Bucket=BUCKET, Key="cond/once")["Body"].read().decode()
    except botocore.exceptions.ClientError:
        out["denied"] = client_error(lambda: app.get_object(Bucket=BUCKET, Key="cond/once"))
    out["second"] = client_error(lambda: app.get_object(Bucket=BUCKET, Key="many/0/00000"))
    s3.delete_bucket_policy(Bucket=BUCKET)
    return out


@step
def encryption():
    """SSE-S3 (one PUT and a multipart upload_file), SSE-C, and a bucket's
    default encryption, read back by download_file and get_object."""
    key_c = bytes(range(32))  # boto3 base64-encodes it and adds its MD5
    s3.put_object(Bucket=BUCKET, Key="enc/s3", Body=read("1m.bin"), ServerSideEncryption="AES256")
    head = s3.head_object(Bucket=BUCKET, Key="enc/s3")
    s3.upload_file(os.path.join(DATA, "30m.bin"), BUCKET, "enc/big", ExtraArgs={"ServerSideEncryption": "AES256"})
    dest = os.path.join(DATA, "enc-big.out")
    s3.download_file(BUCKET, "enc/big", dest)
    s3.put_object(Bucket=BUCKET, Key="enc/c", Body=read("small.bin"), SSECustomerAlgorithm="AES256", SSECustomerKey=key_c)
    no_key = client_error(lambda: s3.get_object(Bucket=BUCKET, Key="enc/c"))
    body_c = s3.get_object(Bucket=BUCKET, Key="enc/c", SSECustomerAlgorithm="AES256", SSECustomerKey=key_c)["Body"].read()
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    )
    default = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    s3.put_object(Bucket=BUCKET, Key="enc/default", Body=b"by default")
    by_default = s3.head_object(Bucket=BUCKET, Key="enc/default").get("ServerSideEncryption", "")
    s3.delete_bucket_encryption(Bucket=BUCKET)
    return {
        "fields": [
            head.get("ServerSideEncryption", ""),
            default["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
            by_default,
        ],
        "etag": head["ETag"],
        "sha256": sha256_file(dest),
        "body": sha256(body_c),
        "denied": no_key,
    }


@step
def versioning():
    """A versioned bucket of its own: two versions, a delete marker, the
    old version read by id, the versions listed and all deleted by id."""
    bucket = BUCKET + "-ver"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "")
    ids = [s3.put_object(Bucket=bucket, Key="v k+1", Body=body)["VersionId"] for body in (b"one", b"two")]
    marker = s3.delete_object(Bucket=bucket, Key="v k+1")
    try:
        s3.head_object(Bucket=bucket, Key="v k+1")
        raise AssertionError("HEAD of a key whose latest version is a delete marker succeeded")
    except botocore.exceptions.ClientError as e:
        head = e.response["ResponseMetadata"]
    old = s3.get_object(Bucket=bucket, Key="v k+1", VersionId=ids[0])
    listed = s3.list_object_versions(Bucket=bucket)  # EncodingType=url, decoded by botocore
    everything = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in listed.get("Versions", []) + listed.get("DeleteMarkers", [])]
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": everything})
    s3.delete_bucket(Bucket=bucket)
    return {
        "fields": [status, marker["VersionId"], str(marker.get("DeleteMarker"))],
        "requested": ids,
        "versions": ["%s@%s@%s" % (v["Key"], v["VersionId"], v["IsLatest"]) for v in listed.get("Versions", [])],
        "left": ["%s@%s@%s" % (m["Key"], m["VersionId"], m["IsLatest"]) for m in listed.get("DeleteMarkers", [])],
        "deleted": sorted("%s@%s@%s" % (d["Key"], d["VersionId"], d.get("DeleteMarker", False)) for d in deleted.get("Deleted", [])),
        "errors": deleted.get("Errors", []),
        "body": old["Body"].read().decode(),
        "version_id": old.get("VersionId", ""),
        "head_status": head["HTTPStatusCode"],
        "delete_marker_header": head["HTTPHeaders"].get("x-amz-delete-marker", ""),
    }


@step
def lifecycle():
    """A lifecycle rule on a bucket of its own: the object it matches is
    answered with its expiry (botocore's Expiration), a new upload with its
    abort date; the rule read back."""
    bucket = BUCKET + "-lc"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "old logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
    ]})
    put = s3.put_object(Bucket=bucket, Key="logs/a", Body=b"a")
    head = s3.head_object(Bucket=bucket, Key="logs/a")
    other = s3.put_object(Bucket=bucket, Key="keep", Body=b"k")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="logs/big")
    s3.abort_multipart_upload(Bucket=bucket, Key="logs/big", UploadId=upload["UploadId"])
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "logs/a"}, {"Key": "keep"}]})
    s3.delete_bucket_lifecycle(Bucket=bucket)
    s3.delete_bucket(Bucket=bucket)
    return {
        "fields": [put.get("Expiration", ""), head.get("Expiration", ""), other.get("Expiration", ""),
                   head["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT"),
                   upload.get("AbortRuleId", ""), upload["AbortDate"].strftime("%a, %d %b %Y %H:%M:%S GMT") if "AbortDate" in upload else "",
                   rules[0]["ID"]],
    }


@step
def missing_key():
    return client_error(lambda: s3.get_object(Bucket=BUCKET, Key="no/such/key"))


json.dump({"steps": steps, "boto3": boto3.__version__}, sys.stdout)
