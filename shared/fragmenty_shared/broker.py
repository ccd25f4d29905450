"""How every service connects to RabbitMQ: one place for publisher confirms and prefetch."""

from __future__ import annotations

from faststream.rabbit import Channel, RabbitBroker

from fragmenty_shared.settings import Settings


def make_broker(settings: Settings, *, prefetch: int = 256) -> RabbitBroker:
    """A broker whose ``publish`` returns only once RabbitMQ has confirmed the message.

    Publisher confirms are on for the default channel; ``prefetch`` bounds unacknowledged
    deliveries per consumer. aio-pika's robust connection reconnects after a broker restart.
    """
    return RabbitBroker(
        settings.rabbitmq_url,
        default_channel=Channel(prefetch_count=prefetch, publisher_confirms=True),
        logger=None,
    )
