from config.celery_app import QUEUES, ROUTES, celery_config
from config.settings import load_settings


def test_guarantees_and_routes():
    conf = celery_config(load_settings({"NOTIFIER_BROKER_URL": "redis://h:6379/0"}))
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_ignore_result"] and conf["result_backend"] is None
    assert {r["queue"] for r in conf["task_routes"].values()} <= set(QUEUES)
    assert conf["task_routes"]["notifier.push.send"] == {"queue": "push"}
    assert ROUTES == {
        "notifier.push.send": "push",
        "notifier.receipts.check": "receipts",
        "notifier.receipts.due": "receipts",
        "notifier.sms.send": "sms",
        "notifier.sms.poll": "sms",
        "notifier.maintenance.sweep": "maintenance",
        "notifier.broadcast.fanout": "broadcast",
    }
    assert conf["broker_transport_options"]["visibility_timeout"] == 3600


def test_countdown_cap_stays_below_visibility_timeout():
    s = load_settings({})
    assert s.max_countdown_seconds < s.broker_visibility_timeout
