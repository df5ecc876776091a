#!/usr/bin/env python3
"""Run N real ONEX nodes in one process against a Kafka broker.

Each node is the PyPI package's own ``MixinNodeIntrospection`` (omnibase-infra,
pinned in interop/python/requirements.lock) on the package's own
``EventBusKafka``; nothing is patched. Every node starts exactly as the
mixin's module docstring documents::

    initialize_introspection(ModelIntrospectionConfig(...))
    await publish_introspection(reason="startup")
    await start_introspection_tasks(enable_heartbeat=True,
                                    heartbeat_interval_seconds=...,
                                    enable_registry_listener=True)

and on SIGTERM/SIGINT shuts down as documented: ``publish_introspection(
reason="shutdown")``, ``stop_introspection_tasks()``, then the shared bus is
closed. A second SIGTERM/SIGINT exits at once (status 130).

stdout carries only JSON lines (one object each, flushed):

    {"event": "started", "node_id", "node_type", "node_name", "node_version",
     "mcp_tool", "health_url", "pid"}                        per node
    {"event": "ready", "nodes": N, "pid"}                    all nodes started
    {"event": "subscribed", "node_id", "listener": "ack"|"request_introspection",
     "after_startup_ms"}                                     only with --listener-events
    {"event": "stopped", "node_id", "shutdown_published"}    per node, at exit

Logs go to stderr. Exit status: 0 after a clean shutdown; 1 when a node could
not start or a shutdown introspection was not published; 2 on bad usage.

Run it with the interop venv (scripts/python/venv.sh prints its python):

    PY=$(scripts/python/venv.sh)
    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 "$PY" interop/python/onex_nodes.py --nodes 4

Environment: KAFKA_BOOTSTRAP_SERVERS is the default of --bootstrap. Every
other KAFKA_* variable the package reads passes through untouched, notably
KAFKA_TOPIC_NAMESPACE (a physical topic prefix "<ns>." on every topic the
nodes publish to and consume from), KAFKA_ENVIRONMENT (the "source" header),
KAFKA_AUTO_OFFSET_RESET, KAFKA_INSTANCE_ID and KAFKA_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
import uuid
from typing import Any, TextIO

NODE_KINDS = ("effect", "compute", "reducer", "orchestrator")  # EnumNodeKind values
MIXIN_LOGGER = "omnibase_infra.mixins.mixin_node_introspection"
log = logging.getLogger("onex_nodes")

# stdout is reserved for the JSON lines; anything else that prints goes to stderr.
_OUT: TextIO = sys.stdout


def emit(obj: dict[str, Any]) -> None:
    _OUT.write(json.dumps(obj) + "\n")
    _OUT.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="onex_nodes.py",
        description="Run N real ONEX nodes (omnibase-infra MixinNodeIntrospection "
        "on EventBusKafka) in one process; JSON lines on stdout, logs on stderr.",
    )
    p.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="Kafka bootstrap servers, host:port[,host:port] "
        "(default: $KAFKA_BOOTSTRAP_SERVERS)",
    )
    p.add_argument("--nodes", type=int, default=4, help="number of nodes (default 4)")
    p.add_argument(
        "--types",
        default=",".join(NODE_KINDS),
        help="comma-separated node kinds assigned round-robin (default %(default)s)",
    )
    p.add_argument(
        "--mcp-tool",
        default=None,
        metavar="NAME",
        help="orchestrator nodes declare declared_capabilities.mcp = "
        "{expose: true, tool_name: NAME}",
    )
    p.add_argument("--version", default="1.2.0", help="node version (default %(default)s)")
    p.add_argument(
        "--node-ids",
        default=None,
        metavar="UUID,...",
        help="node ids in order (node i gets the i-th; the rest get fresh uuid4s), so a "
        "restarted process is the same nodes, e.g. with a new --version",
    )
    p.add_argument(
        "--heartbeat-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="heartbeat interval in seconds (default %(default)s)",
    )
    p.add_argument(
        "--name-prefix",
        default="pynode",
        help="node names are PREFIX-TYPE-INDEX (default %(default)s). The "
        "package derives consumer groups (and static group.instance.id, with "
        "the host name) from env + node name + version, so two processes on "
        "one host need different prefixes or --env",
    )
    p.add_argument(
        "--env",
        default="e2e",
        help="node identity environment (ModelIntrospectionConfig.env; first "
        "segment of the consumer group ids; default %(default)s)",
    )
    p.add_argument(
        "--health-host",
        default="127.0.0.1",
        help="host each node's /health endpoint binds and advertises (default %(default)s)",
    )
    p.add_argument(
        "--health-port-base",
        type=int,
        default=0,
        metavar="PORT",
        help="node i serves http://HOST:PORT+i/health; 0 (default) lets the OS pick free ports",
    )
    p.add_argument(
        "--no-health",
        action="store_true",
        help="declare no endpoints and serve nothing",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="bound on each node's shutdown introspection publish and on closing the bus "
        "(default %(default)s)",
    )
    p.add_argument(
        "--listener-events",
        action="store_true",
        help="also print a 'subscribed' JSON line when a node's ACK listener / "
        "request-introspection listener has joined its consumer group",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="package logs at INFO (-v) or DEBUG (-vv) instead of WARNING",
    )
    args = p.parse_args(argv)
    if not args.bootstrap:
        p.error("no Kafka bootstrap servers: pass --bootstrap or set KAFKA_BOOTSTRAP_SERVERS")
    if args.nodes < 1:
        p.error("--nodes must be >= 1")
    try:
        args.node_id_list = [uuid.UUID(x.strip()) for x in (args.node_ids or "").split(",") if x.strip()]
    except ValueError as e:
        p.error(f"--node-ids: {e}")
    kinds = [t.strip().lower() for t in args.types.split(",") if t.strip()]
    bad = [t for t in kinds if t not in NODE_KINDS]
    if not kinds or bad:
        p.error(f"--types: unknown node kind(s) {bad or args.types!r}; use {','.join(NODE_KINDS)}")
    args.kinds = kinds
    if args.heartbeat_interval <= 0:
        p.error("--heartbeat-interval must be > 0")
    if args.mcp_tool is not None and not args.mcp_tool.strip():
        p.error("--mcp-tool must not be empty")
    return args


def setup_logging(verbose: int) -> int:
    pkg_level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(pkg_level)
    log.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    return pkg_level


class ListenerWatch(logging.Filter):
    """Times the mixin's "... listener subscribed for <node_id>" INFO records.

    Attached to the mixin's logger (whose level is lowered to INFO so the
    records exist); records below the configured package level are dropped
    after being looked at, so the output is as quiet as without it.
    """

    PREFIXES = (("ACK listener subscribed", "ack"), ("Registry listener subscribed", "request_introspection"))

    def __init__(self, pass_level: int, on_subscribed) -> None:
        super().__init__()
        self.pass_level = pass_level
        self.on_subscribed = on_subscribed

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
            for prefix, listener in self.PREFIXES:
                if msg.startswith(prefix):
                    node_id = getattr(record, "node_id", None) or msg.rsplit(" ", 1)[-1]
                    self.on_subscribed(str(node_id), listener)
        except Exception:  # noqa: BLE001 - observation must never break logging
            pass
        return record.levelno >= self.pass_level


async def serve_health(host: str, port: int, node_id: uuid.UUID) -> asyncio.base_events.Server:
    body = json.dumps({"status": "healthy", "node_id": str(node_id)}).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            ok = len(parts) >= 2 and parts[1].split("?")[0] == "/health"
            status, payload = ("200 OK", body) if ok else ("404 Not Found", b'{"status":"not found"}')
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def make_node_class():
    from omnibase_core.enums import EnumNodeKind
    from omnibase_infra.mixins import MixinNodeIntrospection
    from omnibase_infra.models.discovery import ModelIntrospectionConfig
    from omnibase_infra.models.mcp import ModelMCPContractConfig
    from omnibase_infra.models.registration import ModelNodeCapabilities

    class PyNode(MixinNodeIntrospection):
        """A minimal ONEX node: the mixin plus what it discovers by reflection."""

        def __init__(
            self,
            *,
            node_id: uuid.UUID,
            kind: str,
            name: str,
            version: str,
            env: str,
            event_bus: object,
            health_url: str | None,
            mcp_tool: str | None,
        ) -> None:
            # get_endpoints() discovers endpoints from *_url attributes.
            if health_url is not None:
                self.health_url = health_url
            self.mcp_tool = mcp_tool
            capabilities = (
                ModelNodeCapabilities(mcp=ModelMCPContractConfig(expose=True, tool_name=mcp_tool))
                if mcp_tool is not None
                else ModelNodeCapabilities()
            )
            self.initialize_introspection(
                ModelIntrospectionConfig(
                    node_id=node_id,
                    node_type=EnumNodeKind(kind),
                    node_name=name,
                    env=env,
                    event_bus=event_bus,
                    version=version,
                    declared_capabilities=capabilities,
                )
            )

        async def execute(self, payload: dict[str, object]) -> dict[str, object]:
            """The node's one operation (shows up in discovered_capabilities)."""
            return payload

    return PyNode


class Fleet:
    def __init__(self, args: argparse.Namespace, pkg_level: int) -> None:
        self.args = args
        self.pkg_level = pkg_level
        self.bus: Any = None
        self.live: list[dict[str, Any]] = []  # nodes whose startup introspection was published
        self.servers: list[asyncio.base_events.Server] = []
        self.published_at: dict[str, float] = {}
        self.subscribed: dict[tuple[str, str], float] = {}

    def on_subscribed(self, node_id: str, listener: str) -> None:
        now = time.monotonic()
        if (node_id, listener) in self.subscribed:
            return
        self.subscribed[(node_id, listener)] = now
        t0 = self.published_at.get(node_id)
        after_ms = None if t0 is None else round((now - t0) * 1000)
        log.info("node %s: %s listener subscribed %s ms after its startup introspection", node_id, listener, after_ms)
        if self.args.listener_events:
            emit({"event": "subscribed", "node_id": node_id, "listener": listener, "after_startup_ms": after_ms})

    async def start(self) -> None:
        from omnibase_infra.event_bus.event_bus_kafka import EventBusKafka
        from omnibase_infra.topics.topic_namespace import resolve_topic_namespace

        args = self.args
        namespace = resolve_topic_namespace()  # fails fast on a malformed KAFKA_TOPIC_NAMESPACE
        mixin_logger = logging.getLogger(MIXIN_LOGGER)
        mixin_logger.setLevel(min(logging.INFO, self.pkg_level))
        mixin_logger.addFilter(ListenerWatch(self.pkg_level, self.on_subscribed))

        self.bus = EventBusKafka.from_bootstrap(args.bootstrap)
        c = self.bus.config
        log.info(
            "bus: bootstrap=%s environment=%s namespace=%r auto_offset_reset=%s acks=%s timeout=%ss",
            c.bootstrap_servers, c.environment, namespace, c.auto_offset_reset, c.acks, c.timeout_seconds,
        )
        await self.bus.start()
        PyNode = make_node_class()
        # Every node starts concurrently; wait for all of them before judging,
        # so no startup is still running when shutdown begins.
        results = await asyncio.gather(
            *(self._start_node(PyNode, i) for i in range(args.nodes)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            for e in errors[1:]:
                log.error("startup failed: %s", e)
            raise errors[0]

    async def _start_node(self, PyNode, i: int) -> None:
        args = self.args
        kind = args.kinds[i % len(args.kinds)]
        node_id = args.node_id_list[i] if i < len(args.node_id_list) else uuid.uuid4()
        name = f"{args.name_prefix}-{kind}-{i}"
        health_url = None
        if not args.no_health:
            port = args.health_port_base + i if args.health_port_base else 0
            server = await serve_health(args.health_host, port, node_id)
            self.servers.append(server)
            port = server.sockets[0].getsockname()[1]
            health_url = f"http://{args.health_host}:{port}/health"
        mcp_tool = args.mcp_tool if kind == "orchestrator" else None

        node = PyNode(
            node_id=node_id, kind=kind, name=name, version=args.version, env=args.env,
            event_bus=self.bus, health_url=health_url, mcp_tool=mcp_tool,
        )
        if not await node.publish_introspection(reason="startup"):
            raise RuntimeError(f"{name} ({node_id}): startup introspection was not published (see the log above)")
        self.published_at[str(node_id)] = time.monotonic()
        entry = {"node": node, "node_id": str(node_id), "name": name}
        self.live.append(entry)
        await node.start_introspection_tasks(
            enable_heartbeat=True,
            heartbeat_interval_seconds=args.heartbeat_interval,
            enable_registry_listener=True,
        )
        emit({
            "event": "started", "node_id": str(node_id), "node_type": kind, "node_name": name,
            "node_version": args.version, "mcp_tool": mcp_tool, "health_url": health_url, "pid": os.getpid(),
        })

    async def _stop_node(self, entry: dict[str, Any]) -> None:
        node = entry["node"]
        try:
            entry["shutdown_published"] = bool(
                await asyncio.wait_for(node.publish_introspection(reason="shutdown"), self.args.shutdown_timeout)
            )
        except TimeoutError:
            log.error("%s: shutdown introspection not published within %ss", entry["name"], self.args.shutdown_timeout)
            entry["shutdown_published"] = False
        await node.stop_introspection_tasks()

    async def stop(self) -> bool:
        await asyncio.gather(*(self._stop_node(e) for e in self.live))
        if self.bus is not None:
            try:
                await asyncio.wait_for(self.bus.close(), self.args.shutdown_timeout)
            except TimeoutError:
                log.error("closing the Kafka bus took longer than %ss", self.args.shutdown_timeout)
        for server in self.servers:
            server.close()
        for e in self.live:
            emit({"event": "stopped", "node_id": e["node_id"], "shutdown_published": e.get("shutdown_published", False)})
        return all(e.get("shutdown_published") for e in self.live)


async def amain(args: argparse.Namespace, pkg_level: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    seen = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal seen
        seen += 1
        if seen > 1:
            log.warning("%s again: exiting without a clean shutdown", sig.name)
            os._exit(130)
        log.info("%s: shutting down", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

    fleet = Fleet(args, pkg_level)
    rc = 0
    startup = asyncio.create_task(fleet.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({startup, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if startup.done():
        exc = startup.exception()
        if exc is not None:
            # The message says it all (the package logged details above); -v adds the traceback.
            log.error("startup failed: %s", exc, exc_info=exc if args.verbose else None)
            rc = 1
        else:
            emit({"event": "ready", "nodes": len(fleet.live), "pid": os.getpid()})
            log.info("%d node(s) running; SIGTERM or SIGINT stops them", len(fleet.live))
            await stopping
    else:
        log.info("stop requested during startup")
        startup.cancel()
        await asyncio.gather(startup, return_exceptions=True)
    stopping.cancel()
    if not await fleet.stop():
        rc = rc or 1
    return rc


def main(argv: list[str] | None = None) -> int:
    global _OUT
    args = parse_args(argv)
    pkg_level = setup_logging(args.verbose)
    _OUT = sys.stdout
    sys.stdout = sys.stderr  # keep stray prints off the JSON stream
    return asyncio.run(amain(args, pkg_level))


if __name__ == "__main__":
    sys.exit(main())
