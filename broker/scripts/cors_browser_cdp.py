#!/usr/bin/env python3
"""Calls a kinesis-broker from a page in real headless Chromium, as browser SDK code does:
cross-origin `fetch` with `Authorization`, `X-Amz-Date`, `X-Amz-Target` and the Kinesis JSON
content type, so the browser sends a CORS preflight first and enforces the answer's CORS
headers. Uses the CDP driver of tests/fixtures/status_page_cdp.py (Python standard library).

    cors_browser_cdp.py CHROMIUM ENDPOINT

Prints one line `RESULT {json}` with, per call, the status, the body and the response headers
a script can read (only the exposed ones). Exit 0 when every fetch completed (a CORS failure
makes `fetch` throw: that is reported as `{"error": ...}` and exit 1).
"""

import json
import os
import sys
import tempfile

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")
)
from status_page_cdp import Browser  # noqa: E402

CALLS = r"""
(async (endpoint) => {
  const call = async (operation, body) => {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': 'Kinesis_20131202.' + operation,
        'X-Amz-Date': '20261125T200000Z',
        'Authorization': 'AWS4-HMAC-SHA256 Credential=AKIDBROWSER/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0123abcd',
      },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      requestId: response.headers.get('x-amzn-RequestId'),
      errorType: response.headers.get('x-amzn-ErrorType'),
      body: await response.json(),
    };
  };
  try {
    return JSON.stringify({
      created: await call('CreateStream', {StreamName: 'from-browser', ShardCount: 1}),
      listed: await call('ListStreams', {}),
      missing: await call('DescribeStreamSummary', {StreamName: 'no-such-stream'}),
    });
  } catch (error) {
    return JSON.stringify({error: String(error)});
  }
})
"""


def main():
    chromium, endpoint = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(chromium, profile)
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )["sessionId"]
            result = browser.call(
                "Runtime.evaluate",
                {
                    "expression": f"{CALLS}({json.dumps(endpoint)})",
                    "awaitPromise": True,
                    "returnByValue": True,
                },
                session,
            )
        finally:
            browser.close()
    value = result.get("result", {}).get("value")
    print("RESULT " + (value if isinstance(value, str) else json.dumps(result)), flush=True)
    return 1 if not isinstance(value, str) or '"error"' in value[:10] else 0


if __name__ == "__main__":
    sys.exit(main())
