from tests.pipeline.deployment import broker, celery_broker_url, deployment

__all__ = ["broker", "celery_broker_url", "deployment"]
