#!/usr/bin/env python3
"""Drives kinesis-broker's Firehose API with boto3's `firehose` client (unchanged) and checks
the objects it writes under the --firehose-dir directory.

Usage: firehose_boto3.py ENDPOINT_URL FIREHOSE_DIR PHASE [ARGS...]
  direct                 DirectPut, 1 MiB / 2 s buffer: files hold exactly what was put, in order
  transform              Lambda "shaper" drops and fails records: failed ones under the error prefix
  api                    describe/list/tags/update/delete, PutRecordBatch limits and errors
  partition              dynamic partitioning on a JSON key (MetadataExtraction JQ query)
  source-setup STREAM    a Kinesis stream and a KinesisStreamAsSource delivery stream reading it
  produce STREAM ACKED STOP   put records until the file STOP exists, appending acknowledged ones to ACKED
  source-verify STREAM ACKED  wait until every acknowledged record is in a delivered file
  direct-put NAME        create DirectPut NAME (GZIP, 1 MiB / 1 s) and put 2,000 acknowledged records
  direct-verify NAME     wait until all 2,000 records of direct-put are in its (gunzipped) files
Prints "OK <phase>" when every check passed.
"""
import base64
import json
import os
import re
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

ENDPOINT, FIREHOSE_DIR, PHASE = sys.argv[1], sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]
ROLE = "arn:aws:iam::000000000000:role/firehose"
KEY_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)-(?P<version>\d+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}(\.gz)?$")
DEADLINE_SECS = 120


def client(service, retries=3):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": retries, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"].get("Message", "")
    raise AssertionError("the call succeeded but should have failed")


def objects(bucket, under=""):
    """Every object under FIREHOSE_DIR/bucket/under: key -> bytes (temporary files excluded)."""
    root = os.path.join(FIREHOSE_DIR, bucket)
    found = {}
    for directory, _dirs, files in os.walk(os.path.join(root, under)):
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = handle.read()
    return found


def wait_for(description, condition):
    deadline = time.monotonic() + DEADLINE_SECS
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {description}")
        time.sleep(0.2)


def wait_active(firehose, name):
    def active():
        description = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        return description["DeliveryStreamStatus"] == "ACTIVE" and description
    return wait_for(f"{name} ACTIVE", active)


def check_default_key(key, name):
    parts = key.split("/")
    assert len(parts) == 5, key
    year, month, day, hour, object_name = parts
    assert re.fullmatch(r"\d{4}", year) and re.fullmatch(r"\d{2}", month), key
    assert re.fullmatch(r"\d{2}", day) and re.fullmatch(r"\d{2}", hour), key
    match = KEY_NAME.match(object_name)
    assert match and match.group("name") == name, key


def records_in(objects_by_key):
    """The newline-terminated records of every object, per object."""
    return {key: [line for line in body.split(b"\n") if line] for key, body in objects_by_key.items()}


def direct():
    firehose = client("firehose")
    name, bucket = "direct-put", "direct-bucket"
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 2},
        },
    )
    wait_active(firehose, name)
    put = []
    # 3 MiB in batches of 200 records of ~5 KiB: several size-triggered files, then an
    # interval-triggered tail.
    for batch in range(16):
        records = [f"{batch:03d}-{i:04d}-".encode() + b"x" * 5000 + b"\n" for i in range(200)]
        answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
        assert answer["FailedPutCount"] == 0, answer
        assert len(answer["RequestResponses"]) == len(records)
        assert all(entry.get("RecordId") for entry in answer["RequestResponses"])
        put.extend(records)
    single = b"single-record\n"
    assert firehose.put_record(DeliveryStreamName=name, Record={"Data": single})["RecordId"]
    put.append(single)
    expected = b"".join(put)

    def delivered():
        found = objects(bucket)
        return sum(len(body) for body in found.values()) >= len(expected) and found

    found = wait_for("every record delivered", delivered)
    assert len(found) >= 3, f"a 1 MiB size hint over 3 MiB should give several files, got {sorted(found)}"
    for key in found:
        check_default_key(key, name)
    # Files of one delivery hold consecutive runs of the stream: ordered by their first
    # record, their concatenation is exactly what was put, in order.
    index = {record: position for position, record in enumerate(put)}
    ordered = sorted(found.values(), key=lambda body: index[body.split(b"\n", 1)[0] + b"\n"])
    assert b"".join(ordered) == expected, "the files' concatenation differs from what was put"
    sizes = sorted(len(body) for body in found.values())
    assert sizes[-1] < 2 * 1024 * 1024, f"a file far above the 1 MiB hint: {sizes}"
    print("OK direct")


SHAPER = "arn:aws:lambda:us-east-1:000000000000:function:shaper"


def transform():
    firehose = client("firehose")
    name, bucket = "transformed", "transform-bucket"
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "good/",
            "ErrorOutputPrefix": "bad/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [{"Type": "Lambda", "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": SHAPER},
                    {"ParameterName": "NumberOfRetries", "ParameterValue": "1"},
                ]}],
            },
        },
    )
    wait_active(firehose, name)
    records = [f"{kind}-{i}\n".encode() for i in range(30) for kind in ("keep", "drop", "fail")]
    answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    assert answer["FailedPutCount"] == 0, answer
    kept = [r.upper() for r in records if r.startswith(b"keep")]
    failed = [r for r in records if r.startswith(b"fail")]

    def done():
        good = objects(bucket, "good")
        bad = objects(bucket, "bad")
        good_bytes = b"".join(good.values())
        bad_lines = [json.loads(line) for body in bad.values() for line in body.splitlines() if line.strip()]
        return len(good_bytes) >= len(b"".join(kept)) and len(bad_lines) >= len(failed) and (good, bad, bad_lines)

    good, bad, bad_lines = wait_for("transformed and failed records", done)
    good_records = sorted(record for recs in records_in(good).values() for record in recs)
    assert good_records == sorted(r.rstrip(b"\n") for r in kept), good_records[:5]
    assert all(key.startswith("bad/processing-failed/") for key in bad), sorted(bad)
    raw = sorted(base64.b64decode(line["rawData"]) for line in bad_lines)
    assert raw == sorted(failed), raw[:5]
    for line in bad_lines:
        for field in ("attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage", "attemptEndingTimestamp", "lambdaArn"):
            assert field in line, f"{field} missing in {line}"
        assert line["lambdaArn"] == SHAPER, line
    everything = b"".join(good.values()) + b"".join(bad.values())
    assert b"drop-" not in everything and b"DROP-" not in everything, "a dropped record was written"
    print("OK transform")


def partition():
    firehose = client("firehose")
    name, bucket = "partitioned", "partition-bucket"
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "customer=!{partitionKeyFromQuery:customer}/",
            "ErrorOutputPrefix": "errors/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [{"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer:.customer.id}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                ]}],
            },
        },
    )
    wait_active(firehose, name)
    records = [json.dumps({"customer": {"id": customer}, "n": i}).encode() + b"\n"
               for i in range(60) for customer in ("alpha", "beta")]
    answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    assert answer["FailedPutCount"] == 0, answer

    def done():
        found = objects(bucket)
        return sum(len(body) for body in found.values()) >= len(b"".join(records)) and found

    found = wait_for("partitioned records", done)
    for customer in ("alpha", "beta"):
        mine = {key: body for key, body in found.items() if key.startswith(f"customer={customer}/")}
        assert mine, f"no object under customer={customer}/: {sorted(found)}"
        lines = [json.loads(line) for body in mine.values() for line in body.splitlines() if line]
        assert all(line["customer"]["id"] == customer for line in lines), lines[:3]
        assert sorted(line["n"] for line in lines) == list(range(60)), f"{customer}: {len(lines)} records"
    print("OK partition")


def api():
    firehose = client("firehose", retries=1)
    name = "api-checks"
    arn = firehose.create_delivery_stream(
        DeliveryStreamName=name,
        S3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::api-bucket"},
        Tags=[{"Key": "team", "Value": "data"}],
    )["DeliveryStreamARN"]
    assert arn == f"arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}", arn
    assert error_code(lambda: firehose.create_delivery_stream(
        DeliveryStreamName=name,
        S3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::api-bucket"},
    ))[0] == "ResourceInUseException"
    description = wait_active(firehose, name)
    assert description["DeliveryStreamType"] == "DirectPut"
    assert description["VersionId"] == "1"
    destination = description["Destinations"][0]
    assert destination["DestinationId"] == "destinationId-000000000001"
    s3 = destination["S3DestinationDescription"]
    assert s3["BucketARN"] == "arn:aws:s3:::api-bucket"
    assert s3["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}, s3
    assert s3["CompressionFormat"] == "UNCOMPRESSED"

    assert name in firehose.list_delivery_streams()["DeliveryStreamNames"]
    assert firehose.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"] == []

    # UpdateDestination: the version must match, and bumps.
    firehose.update_destination(
        DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
        DestinationId="destinationId-000000000001",
        ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 10}, "Prefix": "p/"},
    )
    code, _ = error_code(lambda: firehose.update_destination(
        DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
        DestinationId="destinationId-000000000001", S3DestinationUpdate={"Prefix": "q/"},
    ))
    assert code == "ConcurrentModificationException", code
    description = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert description["VersionId"] == "2", description["VersionId"]
    extended = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert extended["BufferingHints"] == {"SizeInMBs": 2, "IntervalInSeconds": 10}, extended
    assert extended["Prefix"] == "p/"
    assert "LastUpdateTimestamp" in description

    # Tags.
    firehose.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "core"}])
    tags = firehose.list_tags_for_delivery_stream(DeliveryStreamName=name)
    assert tags["Tags"] == [{"Key": "team", "Value": "core"}, {"Key": "env", "Value": "test"}], tags
    assert tags["HasMoreTags"] is False
    page = firehose.list_tags_for_delivery_stream(DeliveryStreamName=name, Limit=1)
    assert page["HasMoreTags"] is True and len(page["Tags"]) == 1
    firehose.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["team"])
    assert firehose.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [{"Key": "env", "Value": "test"}]

    # PutRecordBatch limits and errors.
    answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"r%d\n" % i} for i in range(500)])
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 500
    ids = [entry["RecordId"] for entry in answer["RequestResponses"]]
    assert len(set(ids)) == 500, "RecordIds must be distinct"
    code, message = error_code(lambda: firehose.put_record_batch(
        DeliveryStreamName=name, Records=[{"Data": b"r"}] * 501))
    assert code == "ValidationException" and "500" in message, (code, message)
    code, message = error_code(lambda: firehose.put_record_batch(
        DeliveryStreamName=name, Records=[{"Data": b"x" * 1_024_001}]))
    assert code == "ValidationException" and "1024000" in message, (code, message)
    code, message = error_code(lambda: firehose.put_record(
        DeliveryStreamName=name, Record={"Data": b"x" * 1_024_001}))
    assert code == "ValidationException", (code, message)
    code, message = error_code(lambda: firehose.put_record_batch(
        DeliveryStreamName=name, Records=[{"Data": b"x" * 1_000_000}] * 5))
    assert code == "InvalidArgumentException" and "4 MiB" in message, (code, message)
    exact = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x" * 1_024_000}] * 4)
    assert exact["FailedPutCount"] == 0
    assert error_code(lambda: firehose.put_record(
        DeliveryStreamName="missing", Record={"Data": b"x"}))[0] == "ResourceNotFoundException"
    assert error_code(lambda: firehose.describe_delivery_stream(
        DeliveryStreamName="missing"))[0] == "ResourceNotFoundException"

    # Bad configurations are refused with the field named.
    for config, named in [
        ({"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b-1", "CompressionFormat": "Snappy"}, "CompressionFormat"),
        ({"RoleARN": ROLE, "BucketARN": "not-an-arn"}, "BucketARN"),
        ({"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b-1", "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn",
             "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:unknown-fn"}]}]}}, "--firehose-lambda unknown-fn"),
    ]:
        code, message = error_code(lambda: firehose.create_delivery_stream(
            DeliveryStreamName="refused", ExtendedS3DestinationConfiguration=config))
        assert code == "InvalidArgumentException" and named in message, (code, message)
    code, message = error_code(lambda: firehose.create_delivery_stream(
        DeliveryStreamName="refused", DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/absent", "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b-1"}))
    assert code == "InvalidArgumentException" and "absent" in message, (code, message)

    firehose.delete_delivery_stream(DeliveryStreamName=name)
    assert error_code(lambda: firehose.describe_delivery_stream(
        DeliveryStreamName=name))[0] == "ResourceNotFoundException"
    assert name not in firehose.list_delivery_streams()["DeliveryStreamNames"]
    print("OK api")


def source_setup():
    stream = ARGS[0]
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    firehose = client("firehose")
    firehose.create_delivery_stream(
        DeliveryStreamName=f"{stream}-delivery",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::source-bucket",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    description = wait_active(firehose, f"{stream}-delivery")
    assert description["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert description["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == stream_arn
    code, _ = error_code(lambda: firehose.put_record(DeliveryStreamName=f"{stream}-delivery", Record={"Data": b"x"}))
    assert code == "InvalidArgumentException", code
    print("OK source-setup")


def produce():
    stream, acked_path, stop_path = ARGS
    kinesis = client("kinesis", retries=1)
    sequence = 0
    with open(acked_path, "a") as acked:
        while not os.path.exists(stop_path):
            batch = [f"rec-{sequence + i:07d}" for i in range(50)]
            try:
                answer = kinesis.put_records(
                    StreamName=stream,
                    Records=[{"Data": (r + "\n").encode(), "PartitionKey": r} for r in batch],
                )
            except (ClientError, EndpointConnectionError, Exception):  # the broker is being killed
                time.sleep(0.2)
                continue
            for record, result in zip(batch, answer["Records"]):
                if "SequenceNumber" in result:
                    acked.write(record + "\n")
            acked.flush()
            sequence += len(batch)
            time.sleep(0.05)
    print("OK produce")


def source_verify():
    stream, acked_path = ARGS
    with open(acked_path) as handle:
        acked = {line.strip() for line in handle if line.strip()}
    assert len(acked) > 100, f"only {len(acked)} records were acknowledged"

    def delivered():
        found = {line.decode() for body in objects("source-bucket").values() for line in body.split(b"\n") if line}
        return acked <= found and found

    found = wait_for(f"all {len(acked)} acknowledged records delivered", delivered)
    print(f"OK source-verify acked={len(acked)} delivered={len(found)}")


DIRECT_RECORDS = [f"direct-{i:05d}\n".encode() for i in range(2000)]


def direct_put():
    name = ARGS[0]
    firehose = client("firehose")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::direct-restart",
            "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    wait_active(firehose, name)
    for start in range(0, len(DIRECT_RECORDS), 500):
        chunk = DIRECT_RECORDS[start:start + 500]
        answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in chunk])
        assert answer["FailedPutCount"] == 0, answer
    print("OK direct-put")


def direct_verify():
    import gzip
    name = ARGS[0]
    expected = set(DIRECT_RECORDS)

    def delivered():
        found = objects("direct-restart")
        for key in found:
            assert key.endswith(".gz") and KEY_NAME.match(key.split("/")[-1]), key
        lines = {line + b"\n" for body in found.values() for line in gzip.decompress(body).split(b"\n") if line}
        return expected <= lines

    wait_for("every DirectPut record delivered after the restart", delivered)
    description = client("firehose").describe_delivery_stream(DeliveryStreamName=name)
    assert description["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"
    print("OK direct-verify")


PHASES = {
    "partition": partition,
    "direct-put": direct_put,
    "direct-verify": direct_verify,
    "direct": direct,
    "transform": transform,
    "api": api,
    "source-setup": source_setup,
    "produce": produce,
    "source-verify": source_verify,
}

if __name__ == "__main__":
    PHASES[PHASE]()
