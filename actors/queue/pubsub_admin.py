"""Creates the Pub/Sub topology a ``pubsub://`` URL names; run once per environment (deploys, CI).

Kept out of :class:`actors.queue.pubsub.PubSubQueue` on purpose: the service account that
publishes and consumes should not need admin rights, and a mistyped URL should fail rather than
create an empty subscription nobody publishes to.

On real Pub/Sub, dead-lettering by policy also needs the Pub/Sub service agent
(``service-<project-number>@gcp-sa-pubsub.iam.gserviceaccount.com``) to hold
``roles/pubsub.publisher`` on the dead-letter topic and ``roles/pubsub.subscriber`` on the
subscription; granting IAM roles is left to the infrastructure code.
"""

from __future__ import annotations

from datetime import timedelta

from google.api_core import exceptions
from google.api_core.exceptions import AlreadyExists
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1
from google.protobuf.field_mask_pb2 import FieldMask
from google.pubsub_v1.types import DeadLetterPolicy, RetryPolicy, Subscription

from actors.queue.pubsub import PubSubConfig

CALL_TIMEOUT = 30.0  # each admin call: an unreachable Pub/Sub is an error, not a 10-minute wait


def _calls() -> dict:
    """Retry and timeout for each admin call (the clients' defaults keep retrying for 600 s)."""
    retry = Retry(
        predicate=if_exception_type(exceptions.ServiceUnavailable, exceptions.DeadlineExceeded),
        initial=0.2,
        maximum=2.0,
        timeout=CALL_TIMEOUT,
    )
    return {"retry": retry, "timeout": CALL_TIMEOUT}


def ensure_topology(
    url: str,
    *,
    ack_deadline_seconds: int = 60,
    min_backoff_seconds: float = 10,
    max_backoff_seconds: float = 600,
    retry_policy: bool = True,
) -> None:
    """Create what is missing, and bring existing subscriptions' settings in line; idempotent.

    Topic and dead-letter topic; the subscription with an ack deadline, a dead-letter policy
    (``max_delivery_attempts`` from the URL; it is also what makes Pub/Sub count delivery
    attempts) and an exponential retry policy; and a subscription on the dead-letter topic,
    without which Pub/Sub would drop the dead letters.

    ``retry_policy=False`` leaves the subscription without one (an existing one is removed):
    Pub/Sub then redelivers a nacked or expired message at once, and only the consumer's own
    delays (:meth:`PubSubQueue.nack`) space the retries.
    """
    config = PubSubConfig.from_url(url)
    with pubsub_v1.PublisherClient() as publisher:
        for topic in (config.topic, config.dead_letter_topic):
            try:
                publisher.create_topic(name=config.topic_path(topic), **_calls())
            except AlreadyExists:
                pass
    dead_letters = Subscription(
        name=config.subscription_path(config.dead_letter_subscription),
        topic=config.topic_path(config.dead_letter_topic),
        ack_deadline_seconds=ack_deadline_seconds,
    )
    jobs = Subscription(
        name=config.subscription_path(config.subscription),
        topic=config.topic_path(config.topic),
        ack_deadline_seconds=ack_deadline_seconds,
        dead_letter_policy=DeadLetterPolicy(
            dead_letter_topic=config.topic_path(config.dead_letter_topic),
            max_delivery_attempts=config.max_delivery_attempts,
        ),
    )
    if retry_policy:
        jobs.retry_policy = RetryPolicy(
            minimum_backoff=timedelta(seconds=min_backoff_seconds),
            maximum_backoff=timedelta(seconds=max_backoff_seconds),
        )
    with pubsub_v1.SubscriberClient() as subscriber:
        _ensure_subscription(subscriber, dead_letters, ["ack_deadline_seconds"])
        _ensure_subscription(subscriber, jobs, ["ack_deadline_seconds", "dead_letter_policy", "retry_policy"])


def _ensure_subscription(subscriber: pubsub_v1.SubscriberClient, wanted: Subscription, fields: list[str]) -> None:
    try:
        subscriber.create_subscription(request=wanted, **_calls())
    except AlreadyExists:
        existing = subscriber.get_subscription(subscription=wanted.name, **_calls())
        if existing.topic != wanted.topic:
            raise ValueError(
                f"subscription {wanted.name} is attached to {existing.topic}, not {wanted.topic}; "
                "a subscription cannot change topic: delete it or name another"
            ) from None
        subscriber.update_subscription(subscription=wanted, update_mask=FieldMask(paths=fields), **_calls())
