from tests.pipeline.deployment import deployment

__all__ = ["deployment"]
