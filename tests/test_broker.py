"""service/broker.py: the Celery settings every app of the project shares for its broker, so
that the web, the workers and beat declare and read the task queue alike."""

from __future__ import annotations

from service.broker import celery_settings


def test_on_redis_the_queue_is_a_list_with_the_visibility_timeout_as_before() -> None:
    settings = celery_settings("redis://127.0.0.1:6379/0", "pressroom")
    assert settings == {
        "broker_url": "redis://127.0.0.1:6379/0",
        "task_default_queue": "pressroom",
        "broker_transport_options": {"visibility_timeout": 3600},
    }


def test_behind_sentinel_celery_asks_the_sentinels_and_keeps_the_visibility_timeout() -> None:
    settings = celery_settings("redis+sentinel://s1:26379,s2:26380/mymaster/2", "pressroom")
    assert settings["broker_url"] == "sentinel://s1:26379/2;sentinel://s2:26380/2"
    options = settings["broker_transport_options"]
    assert options["master_name"] == "mymaster" and options["visibility_timeout"] == 3600


def test_on_rabbitmq_a_quorum_queue_confirmed_publishes_and_delays_held_by_the_broker() -> None:
    url = "amqp://pressroom:secret@rabbitmq:5672/pressroom"
    settings = celery_settings(url, "pressroom")
    assert settings["broker_url"] == url and settings["task_default_queue"] == "pressroom"
    assert settings["task_default_queue_type"] == "quorum"
    assert settings["worker_detect_quorum_queues"] is True
    assert settings["task_default_exchange_type"] == "topic"  # native delayed delivery needs it
    assert settings["broker_native_delayed_delivery_queue_type"] == "quorum"
    assert settings["broker_transport_options"] == {"confirm_publish": True}
