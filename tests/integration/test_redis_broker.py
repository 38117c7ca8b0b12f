"""Publishing through Redis: tasks land on the routed queue under our key prefix, ids only."""

import base64
import json

import redis

from notifier import catalog, producer
from tests.services import REDIS_URL


def test_push_task_lands_on_the_push_queue(migrated, redis_prefix, env):
    env.setenv("NOTIFIER_BROKER_URL", REDIS_URL)
    env.setenv("NOTIFIER_BROKER_KEY_PREFIX", redis_prefix)
    from config.settings import get_settings

    get_settings.cache_clear()
    catalog.add_signature("Bank")
    catalog.review("signature", "Bank", approve=True)
    catalog.add_template("NOTICE", "notification", "Ready.")
    catalog.review("template", "NOTICE", approve=True)
    producer.bind_device("alice", "apns", "ab" * 32, "+8613800138000")
    producer.send("alice", push={"body": "hi"}, sms={"template": "NOTICE", "signature": "Bank"})

    client = redis.Redis.from_url(REDIS_URL)
    raw = client.lrange(f"{redis_prefix}push", 0, -1)
    assert len(raw) == 1
    envelope = json.loads(raw[0])
    assert envelope["headers"]["task"] == "notifier.push.send"
    args = json.loads(base64.b64decode(envelope["body"]))[0]
    assert len(args[0]) == 1  # one push delivery id, nothing else crosses the broker
    assert client.llen(f"{redis_prefix}sms") == 0
    client.close()
