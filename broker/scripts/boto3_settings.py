#!/usr/bin/env python3
"""Drives a kinesis-broker's stream settings with boto3: encryption, enhanced monitoring and
resource policies, their errors, and how DescribeStream(Summary) reports them.

Usage: boto3_settings.py ENDPOINT_URL [phase]
  phase "all" (default): create the stream "settings" and check every operation;
  phase "setup": create the stream and leave settings on (for a restart check);
  phase "verify": check that the settings of "setup" are still there.
Exit status 0 = every check passed.
"""
import json
import sys

import boto3
from botocore.exceptions import ClientError

STREAM = "settings"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                "Action": ["kinesis:GetRecords", "kinesis:DescribeStreamSummary"],
                "Resource": "*",
            }
        ],
    }
)
EVERY_METRIC = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
]


def client(endpoint):
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCAL",
        aws_secret_access_key="local-secret",
    )


def expect_error(code, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        got = error.response["Error"]["Code"]
        assert got == code, f"{call.__name__}: expected {code}, got {got}: {error}"
        return error.response["Error"].get("Message", "")
    raise AssertionError(f"{call.__name__} should have failed with {code}")


def summary(kinesis):
    return kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]


def description(kinesis):
    return kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]


def create(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 1})
    return summary(kinesis)["StreamARN"]


def consumer_arn(kinesis, stream_arn):
    consumers = kinesis.list_stream_consumers(StreamARN=stream_arn)["Consumers"]
    return next(c["ConsumerARN"] for c in consumers if c["ConsumerName"] == "reader")


def setup(kinesis):
    arn = create(kinesis)
    kinesis.start_stream_encryption(
        StreamName=STREAM, EncryptionType="KMS", KeyId="alias/aws/kinesis"
    )
    kinesis.enable_enhanced_monitoring(StreamARN=arn, ShardLevelMetrics=["ALL"])
    kinesis.put_resource_policy(ResourceARN=arn, Policy=POLICY)
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="reader")["Consumer"]
    kinesis.put_resource_policy(ResourceARN=consumer["ConsumerARN"], Policy=POLICY)


def verify(kinesis):
    found = summary(kinesis)
    assert found["EncryptionType"] == "KMS", found
    assert found["KeyId"] == "alias/aws/kinesis", found
    assert found["EnhancedMonitoring"] == [{"ShardLevelMetrics": EVERY_METRIC}], found
    arn = found["StreamARN"]
    assert kinesis.get_resource_policy(ResourceARN=arn)["Policy"] == POLICY
    reader = consumer_arn(kinesis, arn)
    assert kinesis.get_resource_policy(ResourceARN=reader)["Policy"] == POLICY


def check_all(kinesis):
    arn = create(kinesis)

    # Encryption: recorded and reported (records are not really encrypted).
    assert summary(kinesis)["EncryptionType"] == "NONE"
    kinesis.start_stream_encryption(
        StreamName=STREAM, EncryptionType="KMS", KeyId="alias/aws/kinesis"
    )
    described = description(kinesis)
    assert described["EncryptionType"] == "KMS", described
    assert described["KeyId"] == "alias/aws/kinesis", described
    found = summary(kinesis)
    assert (found["EncryptionType"], found["KeyId"]) == ("KMS", "alias/aws/kinesis"), found
    put = kinesis.put_record(StreamName=STREAM, Data=b"x", PartitionKey="k")
    assert put["EncryptionType"] == "KMS", put
    batch = kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"y", "PartitionKey": "k"}])
    assert batch["EncryptionType"] == "KMS", batch
    kinesis.stop_stream_encryption(StreamARN=arn, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    found = summary(kinesis)
    assert found["EncryptionType"] == "NONE" and "KeyId" not in found, found
    put = kinesis.put_record(StreamName=STREAM, Data=b"x", PartitionKey="k")
    assert put["EncryptionType"] == "NONE", put
    message = expect_error(
        "ValidationException",
        kinesis.start_stream_encryption,
        StreamName=STREAM,
        EncryptionType="AES",
        KeyId="k",
    )
    assert "at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, KMS]" in message, message
    expect_error(
        "InvalidArgumentException",
        kinesis.start_stream_encryption,
        StreamName=STREAM,
        EncryptionType="NONE",
        KeyId="k",
    )
    expect_error(
        "ResourceNotFoundException",
        kinesis.start_stream_encryption,
        StreamName="missing",
        EncryptionType="KMS",
        KeyId="k",
    )

    # Enhanced monitoring: Current/Desired, ALL expanded, reflected in DescribeStream(Summary).
    enabled = kinesis.enable_enhanced_monitoring(
        StreamName=STREAM, ShardLevelMetrics=["IncomingBytes", "OutgoingRecords"]
    )
    assert enabled["StreamName"] == STREAM and enabled["StreamARN"] == arn, enabled
    assert enabled["CurrentShardLevelMetrics"] == [], enabled
    assert enabled["DesiredShardLevelMetrics"] == ["IncomingBytes", "OutgoingRecords"], enabled
    everything = kinesis.enable_enhanced_monitoring(StreamARN=arn, ShardLevelMetrics=["ALL"])
    assert everything["DesiredShardLevelMetrics"] == EVERY_METRIC, everything
    assert description(kinesis)["EnhancedMonitoring"] == [{"ShardLevelMetrics": EVERY_METRIC}]
    disabled = kinesis.disable_enhanced_monitoring(
        StreamName=STREAM, ShardLevelMetrics=["IncomingBytes"]
    )
    assert disabled["CurrentShardLevelMetrics"] == EVERY_METRIC, disabled
    assert disabled["DesiredShardLevelMetrics"] == EVERY_METRIC[1:], disabled
    assert summary(kinesis)["EnhancedMonitoring"] == [{"ShardLevelMetrics": EVERY_METRIC[1:]}]
    kinesis.disable_enhanced_monitoring(StreamName=STREAM, ShardLevelMetrics=["ALL"])
    assert summary(kinesis)["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    message = expect_error(
        "ValidationException",
        kinesis.enable_enhanced_monitoring,
        StreamName=STREAM,
        ShardLevelMetrics=["Latency"],
    )
    assert "Value '[Latency]' at 'shardLevelMetrics'" in message, message
    expect_error(
        "ResourceNotFoundException",
        kinesis.disable_enhanced_monitoring,
        StreamName="missing",
        ShardLevelMetrics=["ALL"],
    )

    # Resource policies: stream and consumer ARNs, stored verbatim.
    assert kinesis.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    kinesis.put_resource_policy(ResourceARN=arn, Policy=POLICY)
    assert kinesis.get_resource_policy(ResourceARN=arn)["Policy"] == POLICY
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="reader")["Consumer"]
    consumer_policy = POLICY.replace("GetRecords", "SubscribeToShard")
    kinesis.put_resource_policy(ResourceARN=consumer["ConsumerARN"], Policy=consumer_policy)
    got = kinesis.get_resource_policy(ResourceARN=consumer["ConsumerARN"])["Policy"]
    assert got == consumer_policy, got
    kinesis.delete_resource_policy(ResourceARN=arn)
    assert kinesis.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    kinesis.delete_resource_policy(ResourceARN=consumer["ConsumerARN"])
    assert kinesis.get_resource_policy(ResourceARN=consumer["ConsumerARN"])["Policy"] == "{}"
    expect_error(
        "InvalidArgumentException",
        kinesis.put_resource_policy,
        ResourceARN=arn,
        Policy="not json",
    )
    message = expect_error(
        "ValidationException", kinesis.get_resource_policy, ResourceARN="not-an-arn"
    )
    assert "at 'resourceARN' failed to satisfy constraint" in message, message
    expect_error(
        "ResourceNotFoundException",
        kinesis.get_resource_policy,
        ResourceARN=arn.replace(STREAM, "missing"),
    )
    expect_error(
        "ResourceNotFoundException",
        kinesis.delete_resource_policy,
        ResourceARN=f"{arn}/consumer/nobody:1700000000",
    )
    kinesis.delete_stream(StreamName=STREAM, EnforceConsumerDeletion=True)


def main(endpoint, phase):
    kinesis = client(endpoint)
    if phase == "setup":
        setup(kinesis)
    elif phase == "verify":
        verify(kinesis)
    else:
        check_all(kinesis)
    print(f"boto3 settings {phase} passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "all")
