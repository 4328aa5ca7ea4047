#!/usr/bin/env python3
"""Drives a kinesis-broker with boto3: the commands shown in the README, checked.

Usage: boto3_smoke.py ENDPOINT_URL   (exit status 0 = every check passed)
"""
import sys

import boto3


def main(endpoint):
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCAL",
        aws_secret_access_key="local-secret",
    )
    kinesis.create_stream(StreamName="demo", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="demo", WaiterConfig={"Delay": 1})
    put = kinesis.put_record(StreamName="demo", Data=b"hello", PartitionKey="user-1")
    batch = kinesis.put_records(
        StreamName="demo",
        Records=[{"Data": f"event-{i}".encode(), "PartitionKey": f"user-{i}"} for i in range(10)],
    )
    assert batch["FailedRecordCount"] == 0, batch

    shards = kinesis.list_shards(StreamName="demo")["Shards"]
    assert len(shards) == 2, shards
    seen = []
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName="demo", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        page = kinesis.get_records(ShardIterator=iterator, Limit=100)
        seen += [(r["SequenceNumber"], r["Data"]) for r in page["Records"]]
        assert "MillisBehindLatest" in page
    assert (put["SequenceNumber"], b"hello") in seen, seen
    assert len(seen) == 11, seen

    arn = kinesis.describe_stream_summary(StreamName="demo")["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="push")["Consumer"]
    subscription = kinesis.subscribe_to_shard(
        ConsumerARN=consumer["ConsumerARN"],
        ShardId=put["ShardId"],
        StartingPosition={"Type": "TRIM_HORIZON"},
    )
    pushed = []
    for event in subscription["EventStream"]:
        records = event["SubscribeToShardEvent"]["Records"]
        pushed += [r["Data"] for r in records]
        if records:
            break
    subscription["EventStream"].close()
    assert b"hello" in pushed, pushed

    kinesis.delete_stream(StreamName="demo", EnforceConsumerDeletion=True)
    assert kinesis.list_streams()["StreamNames"] == []
    try:
        kinesis.describe_stream(StreamName="demo")
        raise AssertionError("describing a deleted stream succeeded")
    except kinesis.exceptions.ResourceNotFoundException:
        pass
    print("boto3 smoke test passed")


if __name__ == "__main__":
    main(sys.argv[1])
