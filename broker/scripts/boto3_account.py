#!/usr/bin/env python3
"""Drives a kinesis-broker's account-level and capacity settings and the caller's region with
boto3: DescribeAccountSettings / UpdateAccountSettings, UpdateStreamWarmThroughput,
UpdateMaxRecordSize (enforced by PutRecord), ON_DEMAND streams, and two clients signing for
two regions that see separate streams and ARNs with their own region.

Usage: boto3_account.py ENDPOINT_URL [phase]
  phase "all" (default): set everything up and check it;
  phase "setup": set everything up (for a restart check);
  phase "verify": check that what "setup" did is still there.
Exit status 0 = every check passed.
"""
import sys

import boto3
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"
EAST, WEST = "us-east-1", "eu-west-1"
TWO_MIB = b"x" * (2 * 1024 * 1024)


def client(endpoint, region):
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=region,
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


def arn(region, stream):
    return f"arn:aws:kinesis:{region}:{ACCOUNT}:stream/{stream}"


def wait_active(kinesis, stream):
    kinesis.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def setup(endpoint):
    east, west = client(endpoint, EAST), client(endpoint, WEST)

    # The same name in two regions: two streams.
    east.create_stream(StreamName="orders", ShardCount=1)
    west.create_stream(StreamName="orders", ShardCount=3)
    west.create_stream(
        StreamName="od", StreamModeDetails={"StreamMode": "ON_DEMAND"}
    )
    for kinesis, stream in [(east, "orders"), (west, "orders"), (west, "od")]:
        wait_active(kinesis, stream)
    west.register_stream_consumer(StreamARN=arn(WEST, "orders"), ConsumerName="app")

    # Account settings are per region too: only the west account commits.
    initial = west.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert initial["Status"] == "DISABLED", initial
    message = expect_error(
        "InvalidArgumentException",
        west.update_stream_warm_throughput,
        StreamName="od",
        WarmThroughputMiBps=100,
    )
    assert "MinimumThroughputBillingCommitment" in message, message
    expect_error(
        "ValidationException",
        west.update_account_settings,
        MinimumThroughputBillingCommitment={"Status": "SOMETIMES"},
    )
    enabled = west.update_account_settings(
        MinimumThroughputBillingCommitment={"Status": "ENABLED"}
    )["MinimumThroughputBillingCommitment"]
    assert enabled["Status"] == "ENABLED", enabled
    term = enabled["EarliestAllowedEndAt"] - enabled["StartedAt"]
    assert term.total_seconds() == 24 * 3600, term

    expect_error(
        "InvalidArgumentException",
        west.update_stream_warm_throughput,
        StreamName="orders",
        WarmThroughputMiBps=100,
    )
    expect_error(
        "ResourceNotFoundException",
        west.update_stream_warm_throughput,
        StreamName="missing",
        WarmThroughputMiBps=100,
    )
    warm = west.update_stream_warm_throughput(StreamARN=arn(WEST, "od"), WarmThroughputMiBps=400)
    assert warm["StreamName"] == "od", warm
    assert warm["StreamARN"] == arn(WEST, "od"), warm
    assert warm["WarmThroughput"] == {"TargetMiBps": 400, "CurrentMiBps": 400}, warm

    expect_error(
        "ValidationException",
        west.put_record,
        StreamName="od",
        PartitionKey="k",
        Data=TWO_MIB,
    )
    # (boto3 itself refuses MaxRecordSizeInKiB outside 1024-10240 before sending.)
    expect_error(
        "ResourceNotFoundException",
        west.update_max_record_size,
        StreamARN=arn(WEST, "missing"),
        MaxRecordSizeInKiB=2048,
    )
    west.update_max_record_size(StreamARN=arn(WEST, "od"), MaxRecordSizeInKiB=4096)
    west.put_record(StreamName="od", PartitionKey="k", Data=TWO_MIB)


def verify(endpoint):
    east, west = client(endpoint, EAST), client(endpoint, WEST)

    assert east.list_streams()["StreamNames"] == ["orders"]
    west_list = west.list_streams()
    assert west_list["StreamNames"] == ["od", "orders"], west_list["StreamNames"]
    for summary in west_list["StreamSummaries"]:
        assert summary["StreamARN"] == arn(WEST, summary["StreamName"]), summary

    east_orders = east.describe_stream(StreamName="orders")["StreamDescription"]
    assert east_orders["StreamARN"] == arn(EAST, "orders"), east_orders["StreamARN"]
    assert len(east_orders["Shards"]) == 1
    west_orders = west.describe_stream(StreamName="orders")["StreamDescription"]
    assert west_orders["StreamARN"] == arn(WEST, "orders"), west_orders["StreamARN"]
    assert len(west_orders["Shards"]) == 3
    expect_error("ResourceNotFoundException", east.describe_stream_summary, StreamName="od")

    consumers = west.list_stream_consumers(StreamARN=arn(WEST, "orders"))["Consumers"]
    assert len(consumers) == 1, consumers
    prefix = arn(WEST, "orders") + "/consumer/app:"
    assert consumers[0]["ConsumerARN"].startswith(prefix), consumers[0]

    assert (
        east.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"]
        == "DISABLED"
    )
    west_settings = west.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert west_settings["Status"] == "ENABLED", west_settings

    od = west.describe_stream_summary(StreamName="od")["StreamDescriptionSummary"]
    assert od["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}, od
    assert od["OpenShardCount"] == 4, od
    assert od["MaxRecordSizeInKiB"] == 4096, od
    assert od["WarmThroughput"] == {"TargetMiBps": 400, "CurrentMiBps": 400}, od
    orders = east.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]
    assert orders["MaxRecordSizeInKiB"] == 1024, orders
    assert "WarmThroughput" not in orders, orders
    west.put_record(StreamName="od", PartitionKey="k", Data=TWO_MIB)
    expect_error(
        "ValidationException",
        east.put_record,
        StreamName="orders",
        PartitionKey="k",
        Data=TWO_MIB,
    )


def main():
    endpoint = sys.argv[1]
    phase = sys.argv[2] if len(sys.argv) > 2 else "all"
    if phase in ("all", "setup"):
        setup(endpoint)
    if phase in ("all", "verify"):
        verify(endpoint)
    print(f"boto3 account {phase} passed")


if __name__ == "__main__":
    main()
