"""The baseline worker: a bare Dramatiq actor that only POSTs the same request to the stand-in.

Run as `dramatiq tests.bench.bare_worker --processes 2 --threads 8` with
BENCH_REDIS_URL, BENCH_NAMESPACE, BENCH_SENDGRID_HOST and BENCH_BODY (a JSON file
holding one request body captured from the real worker).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sendgrid import SendGridAPIClient

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"], namespace=os.environ["BENCH_NAMESPACE"])
dramatiq.set_broker(broker)
_client = SendGridAPIClient(api_key="SG.bench", host=os.environ["BENCH_SENDGRID_HOST"])
_body = json.loads(Path(os.environ["BENCH_BODY"]).read_text())


@dramatiq.actor(actor_name="bare_post", queue_name="bare", max_retries=0)
def bare_post(seq: int) -> None:
    body = copy.deepcopy(_body)
    body["personalizations"][0]["custom_args"]["delivery_id"] = str(seq)
    _client.client.mail.send.post(request_body=body, timeout=10)
