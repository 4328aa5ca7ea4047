#!/usr/bin/env python3
"""A Firehose transformation Lambda run as a local command (one JSON event on stdin, the answer
on stdout): records starting with "drop" are Dropped, "fail" ProcessingFailed, the others Ok
and upper-cased."""
import base64
import json
import sys

event = json.load(sys.stdin)
answers = []
for record in event["records"]:
    data = base64.b64decode(record["data"])
    if data.startswith(b"drop"):
        answers.append({"recordId": record["recordId"], "result": "Dropped", "data": record["data"]})
    elif data.startswith(b"fail"):
        answers.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
    else:
        answers.append({"recordId": record["recordId"], "result": "Ok", "data": base64.b64encode(data.upper()).decode()})
json.dump({"records": answers}, sys.stdout)
