"""``pubsub://<project>/<topic>?<options>``: Google Cloud Pub/Sub, the production queue.

Options (query string), all optional::

    subscription=catalog-worker            what consumers pull from
    dead_letter_topic=<topic>-dead-letter  where unparseable and exhausted messages are set aside
    dead_letter_subscription=<dead_letter_topic>-sub
                                           keeps the dead letters (a topic alone would drop them)
    max_delivery_attempts=10               the subscription's dead-letter policy (Pub/Sub: 5..100);
                                           keep it above REPORTS_MAX_DELIVERY_ATTEMPTS: that
                                           counts runs, after which the consumer records and
                                           notifies the failure, while Pub/Sub counts every
                                           delivery, also those nacked without a run (another
                                           worker held the job, the notification is retried)
    max_messages=2                         flow control: messages this process holds at once

``pubsub://my-project`` alone means topic ``generate-report-catalog-topic``. Topics and
subscriptions are created explicitly (:func:`actors.queue.pubsub_admin.ensure_topology`), never
here, so a consumer with a wrong URL fails instead of inventing an empty subscription.
``PUBSUB_EMULATOR_HOST`` points the client at the emulator.

Consumption is a streaming pull started by the first :meth:`PubSubQueue.pull`. The client's lease
manager renews every message this process holds by one lease (the first pull's
``lease_seconds``, 10..600 s) for up to :data:`MAX_LEASE_SECONDS`: a living consumer keeps its
job however long it renders, and a dead one's job is redelivered one lease after it died.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from google.api_core import exceptions
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.futures import StreamingPullFuture
from google.cloud.pubsub_v1.subscriber.message import Message

from actors.queue.base import PUBLISH_TIMEOUT, Delivery, QueueUnavailable

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "generate-report-catalog-topic"
DEFAULT_SUBSCRIPTION = "catalog-worker"
MAX_LEASE_SECONDS = 2 * 60 * 60  # a report running longer loses its lease and is redelivered
MIN_ACK_DEADLINE, MAX_ACK_DEADLINE = 10, 600  # Pub/Sub's bounds for one ack deadline
MAX_ATTRIBUTE_BYTES = 1024  # Pub/Sub's bound for one attribute value
DEAD_LETTER_TIMEOUT = 60.0
CLOSE_TIMEOUT = 30.0
# What the client itself retries a publish on (its default, which keeps trying for 600 s).
_TRANSIENT = if_exception_type(
    exceptions.Aborted,
    exceptions.Cancelled,
    exceptions.DeadlineExceeded,
    exceptions.InternalServerError,
    exceptions.ResourceExhausted,
    exceptions.ServiceUnavailable,
    exceptions.Unknown,
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
_OPTIONS = {"subscription", "dead_letter_topic", "dead_letter_subscription", "max_delivery_attempts", "max_messages"}


@dataclass(frozen=True)
class PubSubConfig:
    """The URL, parsed once and checked, so a typo fails when the queue is opened."""

    project: str
    topic: str
    subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str
    max_delivery_attempts: int
    max_messages: int

    @classmethod
    def from_url(cls, url: str) -> PubSubConfig:
        """Raises ValueError naming what is wrong (the caller adds the variable's name)."""
        parts = urlsplit(url)
        if parts.scheme != "pubsub" or not parts.netloc:
            raise ValueError(f"expected pubsub://<project>/<topic>?<options>, got {url!r}")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        if unknown := sorted(set(options) - _OPTIONS):
            raise ValueError(f"unknown pubsub:// option(s) {', '.join(unknown)}; known: {', '.join(sorted(_OPTIONS))}")
        topic = parts.path.strip("/") or DEFAULT_TOPIC
        dead_letter_topic = options.get("dead_letter_topic", f"{topic}-dead-letter")
        attempts = _whole(options, "max_delivery_attempts", 10)
        if not 5 <= attempts <= 100:
            raise ValueError("pubsub:// max_delivery_attempts must be 5..100 (a Pub/Sub limit)")
        max_messages = _whole(options, "max_messages", 2)
        if max_messages < 1:
            raise ValueError("pubsub:// max_messages must be at least 1")
        config = cls(
            project=parts.netloc,
            topic=topic,
            subscription=options.get("subscription", DEFAULT_SUBSCRIPTION),
            dead_letter_topic=dead_letter_topic,
            dead_letter_subscription=options.get("dead_letter_subscription", f"{dead_letter_topic}-sub"),
            max_delivery_attempts=attempts,
            max_messages=max_messages,
        )
        for what, name in (
            ("topic", config.topic),
            ("subscription", config.subscription),
            ("dead_letter_topic", config.dead_letter_topic),
            ("dead_letter_subscription", config.dead_letter_subscription),
        ):
            if not _NAME.fullmatch(name) or name.startswith("goog"):
                raise ValueError(
                    f"pubsub:// {what} {name!r} is not a Pub/Sub name (3-255 characters: a letter, "
                    "then letters, digits, - _ . ~ + %; not starting with goog)"
                )
        return config

    def topic_path(self, name: str) -> str:
        return f"projects/{self.project}/topics/{name}"

    def subscription_path(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"


def _whole(options: dict[str, str], name: str, default: int) -> int:
    raw = options.get(name, str(default))
    if not raw.isdigit():
        raise ValueError(f"pubsub:// {name} must be a whole number, not {raw!r}")
    return int(raw)


def _deadline(seconds: float) -> int:
    """Pub/Sub takes whole seconds, at most 600."""
    return min(MAX_ACK_DEADLINE, max(0, math.ceil(seconds)))


class PubSubQueue:
    def __init__(self, url: str):
        self.config = PubSubConfig.from_url(url)
        self._topic = self.config.topic_path(self.config.topic)
        self._dead_letter_topic = self.config.topic_path(self.config.dead_letter_topic)
        self._subscription = self.config.subscription_path(self.config.subscription)
        self._publisher = pubsub_v1.PublisherClient()
        self._subscriber: pubsub_v1.SubscriberClient | None = None
        self._stream: StreamingPullFuture | None = None
        # Flow control keeps at most max_messages unsettled, so this does not fill (if it ever
        # did, the callback's error would make the client nack the message).
        self._received: queue.Queue[Message] = queue.Queue(maxsize=self.config.max_messages)
        self._held: dict[str, Message] = {}  # handed out by pull, by ack id (the delivery token)
        self._lock = threading.Lock()
        self._closed = False

    @staticmethod
    def check_url(url: str) -> None:
        PubSubConfig.from_url(url)

    def publish(self, data: bytes, timeout: float = PUBLISH_TIMEOUT) -> str:
        """The server-assigned message id, once the message is stored. The client's retries stop
        at ``timeout`` too, so a message given up on is not sent minutes later."""
        retry = Retry(predicate=_TRANSIENT, initial=0.1, maximum=timeout, multiplier=1.3, timeout=timeout)
        try:
            return self._publisher.publish(self._topic, data, retry=retry, timeout=timeout).result(timeout=timeout)
        except exceptions.NotFound as exc:
            raise QueueUnavailable(
                f"Pub/Sub topic {self._topic} does not exist (run catalog-report queue-setup)"
            ) from exc
        except (exceptions.GoogleAPICallError, exceptions.RetryError, TimeoutError) as exc:
            raise QueueUnavailable(f"Pub/Sub did not take the message within {timeout:g} s: {exc!r}") from exc

    def check(self, timeout: float) -> None:
        """The subscription exists and Pub/Sub answers. Reading a subscription needs
        ``pubsub.subscriptions.get`` (roles/pubsub.viewer); without it only reachability is known."""
        with self._lock:
            self._subscriber = self._subscriber or pubsub_v1.SubscriberClient()
        try:
            self._subscriber.get_subscription(
                subscription=self._subscription,
                timeout=timeout,
                retry=Retry(predicate=_TRANSIENT, initial=0.1, maximum=1.0, timeout=timeout),
            )
        except exceptions.NotFound as exc:
            raise QueueUnavailable(
                f"Pub/Sub subscription {self._subscription} does not exist (run catalog-report queue-setup)"
            ) from exc
        except exceptions.PermissionDenied:
            pass  # Pub/Sub answered; this service account may not read subscriptions
        except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
            raise QueueUnavailable(f"Pub/Sub did not answer within {timeout:g} s: {exc!r}") from exc

    def pull(self, max_messages: int = 1, lease_seconds: float = 60, wait_seconds: float = 0) -> list[Delivery]:
        """Up to ``max_messages`` already streamed in, waiting up to ``wait_seconds`` for the first.

        The first call starts the stream, so ``lease_seconds`` is fixed then; a failed stream is
        reported here (e.g. the subscription does not exist) and restarted by the next call.
        """
        self._start_stream(lease_seconds)
        messages: list[Message] = []
        try:
            messages.append(self._received.get(timeout=max(0.0, wait_seconds)))
            while len(messages) < max_messages:
                messages.append(self._received.get_nowait())
        except queue.Empty:
            pass
        with self._lock:
            self._held.update((m.ack_id, m) for m in messages)
        return [Delivery(m.message_id, m.data, m.delivery_attempt or 1, m.ack_id) for m in messages]

    def _start_stream(self, lease_seconds: float) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the Pub/Sub queue is closed")
            if self._stream is not None and self._stream.done():
                failed, self._stream = self._stream.exception(), None
                while not self._received.empty():  # their leases ended with the stream
                    self._received.get_nowait()
                raise RuntimeError(f"Pub/Sub streaming pull from {self._subscription} stopped: {failed}") from failed
            if self._stream is None:
                lease = max(MIN_ACK_DEADLINE, _deadline(lease_seconds))
                flow = pubsub_v1.types.FlowControl(
                    max_messages=self.config.max_messages,
                    max_lease_duration=MAX_LEASE_SECONDS,
                    min_duration_per_lease_extension=lease,
                    max_duration_per_lease_extension=lease,
                )
                self._subscriber = self._subscriber or pubsub_v1.SubscriberClient()
                self._stream = self._subscriber.subscribe(self._subscription, self._receive, flow_control=flow)

    def _receive(self, message: Message) -> None:
        """Runs on the client's threads; a message arriving while closing goes straight back."""
        with self._lock:
            if self._closed:
                message.nack()
            else:
                self._received.put_nowait(message)

    def _message(self, delivery: Delivery, settle: bool) -> Message | None:
        with self._lock:
            message = self._held.pop(delivery.token, None) if settle else self._held.get(delivery.token)
        if message is None:
            log.debug("message %s: lease %s is not held here any more; ignored", delivery.message_id, delivery.token)
        return message

    def extend(self, delivery: Delivery, lease_seconds: float) -> None:
        """Explicit renewal on top of the client's own: it also covers a job running past
        :data:`MAX_LEASE_SECONDS`. Capped at 600 s, Pub/Sub's limit."""
        if (message := self._message(delivery, settle=False)) is not None:
            message.modify_ack_deadline(_deadline(lease_seconds))

    def ack(self, delivery: Delivery) -> None:
        if (message := self._message(delivery, settle=True)) is not None:
            message.ack()

    def nack(self, delivery: Delivery, delay_seconds: float = 0) -> None:
        """Release the message so it comes back after ``delay_seconds`` (at most 600 s).

        Pub/Sub has no per-message delay, so the ack deadline is set to the delay and the message
        dropped from lease management: exactly what the client's ``nack()`` does with 0. This is
        preferred to an immediate nack because the consumer asks for different delays for
        different reasons (another worker holds the job: one lease; a transient failure: its own
        backoff), which one subscription-wide retry policy cannot express. The subscription's
        retry policy (set by ``ensure_topology``) adds its backoff on top, and alone governs
        redelivery after a consumer died.
        """
        if (message := self._message(delivery, settle=True)) is not None:
            message.modify_ack_deadline(_deadline(delay_seconds))
            message.drop()

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Publish the message to the dead-letter topic, then ack it, so it never loops. If the
        publish fails the message is nacked (it comes back and is set aside then) and the error
        raised. Messages that keep failing are set aside by the subscription's own policy."""
        message = self._message(delivery, settle=True)
        if message is None:
            return
        attributes = {
            "reason": reason.encode()[:MAX_ATTRIBUTE_BYTES].decode(errors="ignore"),
            "original_message_id": delivery.message_id,
            "subscription": self.config.subscription,
            "delivery_attempt": str(delivery.attempt),
        }
        try:
            self._publisher.publish(self._dead_letter_topic, delivery.data, **attributes).result(
                timeout=DEAD_LETTER_TIMEOUT
            )
        except Exception:
            message.nack()
            raise
        message.ack()

    def close(self) -> None:
        """Stop the stream and wait for it. Messages streamed in but never handed out are nacked
        so another consumer gets them now; handed-out ones are left to their lease."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stream, self._stream = self._stream, None
            while not self._received.empty():
                self._received.get_nowait().nack()
        try:
            if stream is not None:
                stream.cancel()
                stream.exception(timeout=CLOSE_TIMEOUT)  # waits for the shutdown, not raising its cause
        finally:
            if self._subscriber is not None:
                self._subscriber.close()
            self._publisher.stop()
            self._publisher.transport.close()
