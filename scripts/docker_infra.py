"""Infrastructure in Docker containers: ``make test INFRA=docker`` and ``make down INFRA=docker``.

Starts ``mongo:7`` and ``rabbitmq:3.13-management`` through the Docker SDK on the ports the
settings default to, so the same test suite runs against a real MongoDB. Containers carry a
label, and ``down`` removes only containers with that label.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from dataclasses import dataclass

import docker
from docker.errors import DockerException, NotFound

LABEL = "dev.fragmenty.infra"


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    ports: dict[str, int]
    ready_port: int
    environment: dict[str, str]


CONTAINERS = (
    Container(
        name="fragmenty-infra-mongo",
        image="mongo:7",
        ports={"27017/tcp": 27017},
        ready_port=27017,
        environment={},
    ),
    Container(
        name="fragmenty-infra-rabbitmq",
        image="rabbitmq:3.13-management",
        ports={"5672/tcp": 5672, "15672/tcp": 15672},
        ready_port=5672,
        environment={},
    ),
)


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        sys.exit(
            f"docker-infra: no Docker engine is reachable ({exc}).\n"
            "Use the default INFRA=local (RabbitMQ and FerretDB on this machine) instead."
        )
    return client


def up() -> None:
    client = _client()
    for spec in CONTAINERS:
        try:
            container = client.containers.get(spec.name)
            if container.status != "running":
                container.start()
            print(f"docker-infra: {spec.name} reused", file=sys.stderr)
        except NotFound:
            print(f"docker-infra: starting {spec.image}", file=sys.stderr)
            client.containers.run(
                spec.image,
                name=spec.name,
                detach=True,
                ports=spec.ports,
                environment=spec.environment,
                labels={LABEL: "1"},
            )
    deadline = time.monotonic() + 120
    for spec in CONTAINERS:
        while not _port_answers(spec.ready_port):
            if time.monotonic() > deadline:
                sys.exit(f"docker-infra: {spec.name} did not answer on port {spec.ready_port}")
            time.sleep(1)
    # RabbitMQ opens its port before it accepts AMQP logins; give it a moment to finish booting.
    time.sleep(5)
    print("docker-infra: ready", file=sys.stderr)


def down() -> None:
    client = _client()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        print(f"docker-infra: removing {container.name}", file=sys.stderr)
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["up", "down"])
    args = parser.parse_args()
    up() if args.action == "up" else down()


if __name__ == "__main__":
    main()
