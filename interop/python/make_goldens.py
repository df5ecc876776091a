#!/usr/bin/env python3
"""Regenerate golden Kafka records from the pinned omnibase-infra package itself.

Run from the repository root with the interop venv's python, no arguments:

    $(scripts/python/venv.sh | tail -1) interop/python/make_goldens.py

Writes interop/golden/NAME.json (the exact record value bytes) and
interop/golden/NAME.record.json ({"topic", "key", "headers", "note"}), the format of
/work/shared/fixtures.

Every record is produced by the package's own code paths, with no broker:

* A real ``EventBusKafka`` (never started against a broker) is the transport. Its
  ``_publish_with_retry`` -- the last step before ``AIOKafkaProducer.send_and_wait`` --
  is replaced by a recorder, so ``publish_envelope`` (value = ``json.dumps(
  envelope.model_dump(mode="json"))``, headers from ``ModelEventHeaders`` +
  ``header_identity_fields_from_envelope``), ``publish`` (topic validation,
  ``_headers_for_unheadered_publish``) and ``_model_headers_to_kafka`` all run as in
  production.
* Introspection, heartbeat, the ACK command and request answers come from a real
  ``MixinNodeIntrospection`` node (``publish_introspection``, ``_publish_heartbeat``,
  ``_on_registration_accepted``, ``_process_introspection_request``).
* The runtime tick comes from ``RuntimeScheduler.emit_tick``.
* The DLQ record comes from ``MixinKafkaDlq._publish_raw_to_dlq`` (the bus's raw DLQ
  path) with the bus's ``_producer`` replaced by a recorder of ``send_and_wait``, called
  with the arguments ``EventBusSubcontractWiring._publish_to_dlq`` passes for a content
  failure.

Determinism: ``uuid.uuid4`` is replaced (before any omnibase import, so every
``from uuid import uuid4`` and ``default_factory=uuid4`` binds to it) by a generator
that derives version-4 UUIDs from the golden's name and a counter; the module-level
``datetime`` of the modules that read the clock is replaced by a subclass whose
``now()`` returns the golden's fixed instant; the node mixin's ``time`` module is
replaced by a fixed clock (uptime and introspection timings). Running twice produces
identical files.

Only the request-introspection bodies are dicts built here: the package has no model
and no publisher for the raw request the node listener reads (see README.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import uuid as _uuid_mod
from datetime import UTC, datetime as _real_datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "interop" / "golden"

# --------------------------------------------------------------------------- ids
_ID_STATE = {"label": "init", "n": 0}


def _det_uuid4() -> _uuid_mod.UUID:
    _ID_STATE["n"] += 1
    digest = hashlib.sha256(f"{_ID_STATE['label']}:{_ID_STATE['n']}".encode()).digest()
    return _uuid_mod.UUID(bytes=digest[:16], version=4)


_uuid_mod.uuid4 = _det_uuid4  # must happen before the omnibase imports below

# The package must see no deployment namespace or environment overrides.
os.environ.pop("KAFKA_TOPIC_NAMESPACE", None)


# ------------------------------------------------------------------------- clock
class _Clock:
    now: _real_datetime = _real_datetime(2026, 3, 2, 14, 5, 7, 413015, tzinfo=UTC)


class _FixedDatetimeMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _real_datetime)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _real_datetime)


class _FixedDatetime(_real_datetime, metaclass=_FixedDatetimeMeta):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        value = _Clock.now
        return value if tz is not None else value.replace(tzinfo=None)

    @classmethod
    def utcnow(cls):  # type: ignore[override]
        return _Clock.now.replace(tzinfo=None)


class _FixedTime:
    """Stands in for the ``time`` module inside the node mixin."""

    start = 1772460307.0

    @staticmethod
    def time() -> float:
        return _FixedTime.start + (_Clock.now - _Clock.base).total_seconds()

    @staticmethod
    def perf_counter() -> float:
        return 100.0  # every measured duration is exactly 0.0 ms

    @staticmethod
    def monotonic() -> float:
        return 100.0


_Clock.base = _Clock.now  # type: ignore[attr-defined]

# ---------------------------------------------------------------- package import
import importlib.metadata  # noqa: E402

from omnibase_core.enums import EnumNodeKind  # noqa: E402
from omnibase_core.models.events.model_event_envelope import ModelEventEnvelope  # noqa: E402
import omnibase_core.models.events.model_event_envelope as _m_envelope  # noqa: E402
from omnibase_infra.event_bus.event_bus_kafka import EventBusKafka  # noqa: E402
import omnibase_infra.event_bus.event_bus_kafka as _m_bus  # noqa: E402
import omnibase_infra.event_bus.mixin_kafka_broadcast as _m_broadcast  # noqa: E402
import omnibase_infra.event_bus.mixin_kafka_dlq as _m_dlq  # noqa: E402
from omnibase_infra.event_bus.topic_constants import get_dlq_topic_for_original  # noqa: E402
from omnibase_infra.enums.enum_dlq_failure_class import EnumDlqFailureClass  # noqa: E402
from aiokafka.structs import ConsumerRecord  # noqa: E402
from omnibase_infra.event_bus.models.config import ModelKafkaEventBusConfig  # noqa: E402
from omnibase_infra.event_bus.models.model_event_headers import ModelEventHeaders  # noqa: E402
from omnibase_infra.event_bus.models.model_event_message import ModelEventMessage  # noqa: E402
import omnibase_infra.mixins.mixin_node_introspection as _m_mixin  # noqa: E402
import omnibase_infra.models.discovery.model_introspection_performance_metrics as _m_perf  # noqa: E402
from omnibase_infra.mixins.mixin_node_introspection import MixinNodeIntrospection  # noqa: E402
from omnibase_infra.models.catalog.model_topic_catalog_query import ModelTopicCatalogQuery  # noqa: E402
from omnibase_infra.models.discovery.model_introspection_config import ModelIntrospectionConfig  # noqa: E402
from omnibase_infra.models.registration.events.model_node_registration_accepted import (  # noqa: E402
    ModelNodeRegistrationAccepted,
)
from omnibase_infra.models.registration.model_node_capabilities import ModelNodeCapabilities  # noqa: E402
from omnibase_infra.models.registration.model_topic_catalog_request import ModelTopicCatalogRequest  # noqa: E402
from omnibase_infra.runtime.models.model_runtime_scheduler_config import ModelRuntimeSchedulerConfig  # noqa: E402
import omnibase_infra.runtime.observability.consumer_flow_counters as _m_flow  # noqa: E402
import omnibase_infra.runtime.runtime_scheduler as _m_sched  # noqa: E402
from omnibase_infra.runtime.runtime_scheduler import RuntimeScheduler  # noqa: E402
from omnibase_infra.topics import (  # noqa: E402
    SUFFIX_NODE_REGISTRATION_ACCEPTED,
    SUFFIX_REQUEST_INTROSPECTION,
)

for _mod in (_m_envelope, _m_bus, _m_broadcast, _m_dlq, _m_mixin, _m_perf, _m_sched):
    if getattr(_mod, "datetime", None) is _real_datetime:
        _mod.datetime = _FixedDatetime  # type: ignore[attr-defined]
_m_mixin.time = _FixedTime  # type: ignore[attr-defined]
if hasattr(_m_sched, "time"):
    _m_sched.time = _FixedTime  # type: ignore[attr-defined]

TOPIC_CATALOG_QUERY = "onex.cmd.platform.topic-catalog-query.v1"

NODE_ID = _uuid_mod.UUID("3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18")
OTHER_NODE_ID = _uuid_mod.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")


def _at(label: str, when: _real_datetime) -> None:
    """Start a golden: reset the id stream and set the clock."""
    _ID_STATE["label"] = label
    _ID_STATE["n"] = 0
    _Clock.now = when


def _t(second: int, micro: int, minute: int = 5) -> _real_datetime:
    return _real_datetime(2026, 3, 2, 14, minute, second, micro, tzinfo=UTC)


# --------------------------------------------------------------------- transport
class RecordingKafkaBus(EventBusKafka):
    """The real EventBusKafka with the broker send replaced by a recorder."""

    def __init__(self) -> None:
        super().__init__(
            config=ModelKafkaEventBusConfig(bootstrap_servers="localhost:9092", environment="local")
        )
        self._started = True  # publish() refuses to run on a bus that was never started
        self.records: list[dict[str, Any]] = []

    async def _publish_with_retry(  # type: ignore[override]
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        kafka_headers: list[tuple[str, bytes]],
        headers: ModelEventHeaders,
    ) -> None:
        self.records.append({"topic": topic, "key": key, "value": value, "headers": kafka_headers})

    def take_one(self) -> dict[str, Any]:
        if len(self.records) != 1:
            raise SystemExit(f"expected exactly one published record, got {len(self.records)}")
        return self.records.pop()


class RecordingProducer:
    """Stands in for the AIOKafkaProducer the DLQ path sends with."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Any = None
    ) -> None:
        self.records.append({"topic": topic, "key": key, "value": value, "headers": list(headers or [])})


class GoldenEffectNode(MixinNodeIntrospection):
    """A minimal effect node as a Python service would declare it."""

    health_url = "http://node-registry-effect:8085/health"
    metrics_url = "http://node-registry-effect:8085/metrics"
    current_state = "ready"

    def __init__(self, node_id: _uuid_mod.UUID, bus: Any) -> None:
        self.initialize_introspection(
            ModelIntrospectionConfig(
                node_id=node_id,
                node_type=EnumNodeKind.EFFECT,
                node_name="node_registry_effect",
                event_bus=bus,
                version="1.2.0",
                declared_capabilities=ModelNodeCapabilities(postgres=True, database=True),
            )
        )

    async def execute_registration(self, node_id: str, payload: dict[str, str]) -> bool:
        return True

    async def handle_heartbeat(self, node_id: str) -> None:
        return None


# --------------------------------------------------------------------- writing
def _write(name: str, rec: dict[str, Any], note: str) -> None:
    (OUT / f"{name}.json").write_bytes(rec["value"])
    headers: dict[str, str] = {}
    for k, v in rec["headers"]:
        headers[k] = v.decode("utf-8")
    meta = {
        "topic": rec["topic"],
        "key": rec["key"].decode("utf-8") if rec["key"] is not None else None,
        "headers": headers,
        "note": note,
    }
    (OUT / f"{name}.record.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    WRITTEN.append((name, rec["topic"], note))


WRITTEN: list[tuple[str, str, str]] = []


def _message(topic: str, value: bytes, key: bytes | None = None) -> ModelEventMessage:
    return ModelEventMessage(
        topic=topic,
        key=key,
        value=value,
        headers=ModelEventHeaders(source="golden", event_type=topic, timestamp=_Clock.now),
    )


async def main_async() -> None:
    bus = RecordingKafkaBus()
    _at("node-setup", _t(7, 0))
    node = GoldenEffectNode(NODE_ID, bus)
    _m_flow.reset_consumer_flow_counters()

    # 1. Startup introspection.
    _at("introspection-effect", _t(7, 413015))
    node.invalidate_introspection_cache()
    assert await node.publish_introspection(reason="startup")
    _write(
        "introspection-effect",
        bus.take_one(),
        "MixinNodeIntrospection.publish_introspection(reason='startup') through "
        "EventBusKafka.publish_envelope: envelope, unkeyed. No contract, so event_bus and "
        "contract_capabilities are null.",
    )

    # 2. Heartbeat on the priming tick: flow_window is null.
    _at("heartbeat", _t(37, 410551))
    assert await node._publish_heartbeat()
    _write(
        "heartbeat",
        bus.take_one(),
        "MixinNodeIntrospection._publish_heartbeat on the flow-counter priming tick "
        "(flow_window null): envelope, unkeyed.",
    )

    # 3. Heartbeat carrying a closed flow window (OMN-16777).
    counters = _m_flow.get_consumer_flow_counters()
    counters.register("local.node_registry_effect.consume.1.0.0", "onex.evt.platform.node-registration-accepted.v1", declares_output=True)
    counters.record_in("local.node_registry_effect.consume.1.0.0", "onex.evt.platform.node-registration-accepted.v1", 3)
    counters.record_out("local.node_registry_effect.consume.1.0.0", "onex.evt.platform.node-registration-accepted.v1", 3)
    counters.record_produced("onex.cmd.platform.node-registration-acked.v1", 3)
    _at("heartbeat-flow-window", _t(7, 402119, minute=6))
    assert await node._publish_heartbeat()
    _write(
        "heartbeat-flow-window",
        bus.take_one(),
        "MixinNodeIntrospection._publish_heartbeat after traffic: payload.flow_window is a "
        "ModelNodeFlowWindow with one consumer delta and one produce delta.",
    )

    # 4. Bare registration-accepted, as the fleet publishes it, two serializations.
    _at("accepted", _t(8, 120004))
    accepted = ModelNodeRegistrationAccepted(
        entity_id=NODE_ID,
        node_id=NODE_ID,
        correlation_id=_uuid_mod.UUID("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"),
        causation_id=_uuid_mod.UUID("e1d2c3b4-a5f6-4789-9abc-def012345678"),
        emitted_at=_Clock.now,
        ack_deadline=_Clock.now + timedelta(seconds=30),
    )
    accepted_value = json.dumps(accepted.model_dump(mode="json")).encode("utf-8")
    await bus.publish(SUFFIX_NODE_REGISTRATION_ACCEPTED, str(NODE_ID).encode("utf-8"), accepted_value)
    _write(
        "accepted",
        bus.take_one(),
        "Bare ModelNodeRegistrationAccepted, json.dumps(model.model_dump(mode='json')) "
        "(Python default separators), published with EventBusKafka.publish and no caller "
        "headers (identity derived from the body). Keyed by node id.",
    )
    _at("accepted-compact", _t(8, 120004))
    await bus.publish(
        SUFFIX_NODE_REGISTRATION_ACCEPTED, str(NODE_ID).encode("utf-8"), accepted.model_dump_json().encode("utf-8")
    )
    _write(
        "accepted-compact",
        bus.take_one(),
        "Same event as 'accepted' serialized with model_dump_json() (compact JSON).",
    )

    # 5. The ACK the node's listener publishes for that accepted record.
    _at("ack", _t(8, 902901))
    await node._on_registration_accepted(_message(SUFFIX_NODE_REGISTRATION_ACCEPTED, accepted_value))
    _write(
        "ack",
        bus.take_one(),
        "MixinNodeIntrospection._on_registration_accepted given golden 'accepted': "
        "envelope(ModelNodeRegistrationAcked), keyed by node_id, correlation id of the accepted event.",
    )

    # 6. Raw request-introspection (no package model or publisher exists; body = the keys
    #    the node listener reads), published by EventBusKafka.publish without headers.
    _at("request-introspection-untargeted", _t(0, 411, minute=6))
    req_untargeted = {"correlation_id": str(_uuid_mod.UUID("d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"))}
    await bus.publish(SUFFIX_REQUEST_INTROSPECTION, None, json.dumps(req_untargeted).encode("utf-8"))
    untargeted = bus.take_one()
    _write(
        "request-introspection-untargeted",
        untargeted,
        "Raw JSON (no envelope, no package model): every node answers. Body holds only the "
        "keys MixinNodeIntrospection._process_introspection_request reads; json.dumps; "
        "EventBusKafka.publish without caller headers.",
    )
    _at("request-introspection-targeted", _t(0, 512, minute=6))
    req_targeted = {
        "correlation_id": str(_uuid_mod.UUID("d2e3f4a5-b6c7-4d8e-9f01-a2b3c4d5e6f7")),
        "target_node_id": str(NODE_ID),
    }
    await bus.publish(SUFFIX_REQUEST_INTROSPECTION, None, json.dumps(req_targeted).encode("utf-8"))
    targeted = bus.take_one()
    _write(
        "request-introspection-targeted",
        targeted,
        f"Raw JSON addressed to node {NODE_ID} via top-level target_node_id; other nodes ignore it.",
    )

    # 7. The node's answer to the targeted request.
    _at("introspection-request-answer", _t(0, 730211, minute=6))
    await node._process_introspection_request(_message(SUFFIX_REQUEST_INTROSPECTION, targeted["value"]))
    _write(
        "introspection-request-answer",
        bus.take_one(),
        "The node's answer to golden 'request-introspection-targeted': publish_introspection("
        "reason='request') with the request's correlation_id; envelope, unkeyed.",
    )

    # 8. The orchestrator's typed form on the same topic: envelope(ModelTopicCatalogRequest).
    _at("request-introspection-catalog-request", _t(1, 5, minute=6))
    catalog_req = ModelTopicCatalogRequest(
        correlation_id=_uuid_mod.UUID("4c5d6e7f-8091-4a2b-9c3d-4e5f6a7b8c9d"),
        requested_at=_Clock.now,
        requester="omnidash",
    )
    await bus.publish_envelope(
        ModelEventEnvelope(payload=catalog_req, correlation_id=catalog_req.correlation_id, tenant_id=None),
        SUFFIX_REQUEST_INTROSPECTION,
    )
    _write(
        "request-introspection-catalog-request",
        bus.take_one(),
        "envelope(ModelTopicCatalogRequest) via publish_envelope: the form the orchestrator's "
        "HandlerCatalogRequest consumes on this topic. Every node also treats it as an "
        "untargeted introspection request (no top-level target_node_id).",
    )

    # 9. Topic catalog query.
    _at("topic-catalog-query", _t(0, 125520, minute=7))
    query = ModelTopicCatalogQuery(
        correlation_id=_uuid_mod.UUID("4b5c6d7e-8f90-4a1b-8c2d-3e4f5a6b7c8d"),
        client_id="omnidash",
        include_inactive=False,
        topic_pattern="onex.evt.platform.*",
    )
    await bus.publish_envelope(
        ModelEventEnvelope(payload=query, correlation_id=query.correlation_id, tenant_id=None),
        TOPIC_CATALOG_QUERY,
    )
    _write(
        "topic-catalog-query",
        bus.take_one(),
        "envelope(ModelTopicCatalogQuery) via publish_envelope, envelope correlation_id = query "
        "correlation_id, unkeyed.",
    )

    # 10. Runtime tick (an envelope since OMN-20590; the old bare fixture is refused).
    _at("runtime-tick", _t(8, 211, minute=5))
    scheduler = RuntimeScheduler(
        config=ModelRuntimeSchedulerConfig(
            scheduler_id="runtime-scheduler-default",
            tick_interval_ms=1000,
            persist_sequence_number=False,
            valkey_host="localhost",
        ),
        event_bus=bus,
    )
    await scheduler.emit_tick(now=_t(8, 0, minute=5))
    _write(
        "runtime-tick",
        bus.take_one(),
        "RuntimeScheduler.emit_tick: envelope(ModelRuntimeTick) with event_type "
        "'platform.runtime-tick' and source_tool 'runtime-scheduler.<id>', keyed by scheduler_id.",
    )

    # 11. DLQ record of the raw path: a malformed introspection (not JSON) dead-lettered
    #     as a content error, as EventBusSubcontractWiring._publish_to_dlq calls it.
    _at("dlq-content-error", _t(0, 513330, minute=8))
    producer = RecordingProducer()
    bus._producer = producer  # type: ignore[assignment]
    bad_topic = "onex.evt.platform.node-introspection.v1"
    bad_value = b'{"payload": {"node_id": "not-a-uuid", "node_type": "effect"}'
    try:
        json.loads(bad_value)
        raise SystemExit("the malformed introspection parsed")
    except json.JSONDecodeError as exc:
        decode_error = exc
    raw = ConsumerRecord(
        topic=bad_topic, partition=3, offset=1042, timestamp=1772460480513, timestamp_type=0,
        key=None, value=bad_value, checksum=None, serialized_key_size=-1,
        serialized_value_size=len(bad_value), headers=[],
    )
    ok = await bus._publish_raw_to_dlq(
        original_topic=bad_topic,
        raw_msg=raw,
        error=decode_error,
        correlation_id=_uuid_mod.UUID("5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"),
        failure_type="content_error",
        consumer_group="local.node_registration_orchestrator.consume.1.0.0",
        dlq_topic=get_dlq_topic_for_original(bad_topic),
        failure_class=EnumDlqFailureClass.PUBLISHER_MALFORMED.value,
    )
    bus._producer = None
    if not ok or len(producer.records) != 1:
        raise SystemExit(f"DLQ publish: ok={ok}, {len(producer.records)} records")
    _write(
        "dlq-content-error",
        producer.records.pop(),
        "MixinKafkaDlq._publish_raw_to_dlq (raw DLQ path) for a malformed introspection value "
        "(json.JSONDecodeError from json.loads), failure_type content_error, failure_class "
        "publisher_malformed, dlq_topic get_dlq_topic_for_original(original topic), as "
        "EventBusSubcontractWiring._publish_to_dlq passes them. Key: the original's (none).",
    )


README_HEAD = """# Golden wire records (omnibase-infra {infra}, omnibase-core {core})

Generated by `interop/python/make_goldens.py` from the pinned PyPI package's own code paths
(no broker, no hand-written JSON except the raw request-introspection bodies, for which
the package has no model). Regenerate from the repository root with the interop venv
(`scripts/python/venv.sh` prints its python last); the output is byte-identical run to run:

    $(scripts/python/venv.sh | tail -1) interop/python/make_goldens.py

Format as in /work/shared/fixtures: `NAME.json` is the exact record value (bytes, no trailing
newline); `NAME.record.json` holds `topic`, `key` (string or null), `headers` (Kafka headers,
name -> string, in the order the package writes them) and a `note`.

Ids and times are fixed (uuid4 and the clock are patched), so regeneration is byte-identical.
Headers: `message_id` = envelope_id and `correlation_id` = envelope correlation_id for
envelope records (`header_identity_fields_from_envelope`); for raw `publish` without caller
headers they are derived from the body (`_headers_for_unheadered_publish`; message_id minted
when the body has no `envelope_id`). `timestamp` is the publish instant, `source` the bus
environment (`local`), `event_type` the topic. The DLQ record (`dlq-content-error`) has the
raw DLQ path's headers instead: `ModelEventHeaders` (minted `message_id`, `correlation_id` =
the failure's, `timestamp` = `failure_timestamp`, `event_type` `dlq_raw_message`) followed by
`original_topic`, `dlq_topic`, `failure_type`, `failure_reason`, `failure_timestamp`,
`failure_class`. It is the current counterpart of /work/shared/fixtures/dlq-content-error:
same failed record, but `failure_reason` is the real `sanitize_error_message` of the
`json.JSONDecodeError` (`"JSONDecodeError: Expecting ',' delimiter: ..."`).

| golden | topic | form |
|---|---|---|
"""

FORMS = {
    "introspection-effect": "envelope(ModelNodeIntrospectionEvent), unkeyed",
    "heartbeat": "envelope(ModelNodeHeartbeatEvent), flow_window null, unkeyed",
    "heartbeat-flow-window": "envelope(ModelNodeHeartbeatEvent), flow_window set, unkeyed",
    "accepted": "bare ModelNodeRegistrationAccepted, json.dumps(model_dump(mode='json')), key node id",
    "accepted-compact": "bare ModelNodeRegistrationAccepted, model_dump_json(), key node id",
    "ack": "envelope(ModelNodeRegistrationAcked), key node id",
    "request-introspection-untargeted": "raw JSON {correlation_id}",
    "request-introspection-targeted": "raw JSON {correlation_id, target_node_id}",
    "introspection-request-answer": "envelope(ModelNodeIntrospectionEvent) reason=request, unkeyed",
    "request-introspection-catalog-request": "envelope(ModelTopicCatalogRequest), unkeyed",
    "topic-catalog-query": "envelope(ModelTopicCatalogQuery), unkeyed",
    "runtime-tick": "envelope(ModelRuntimeTick), key scheduler_id",
    "dlq-content-error": "raw-path DLQ record (MixinKafkaDlq._publish_raw_to_dlq), key of the original (none)",
}


def main() -> int:
    if len(sys.argv) > 1:
        print("usage: make_goldens.py (no arguments)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.glob("*.json"):
        p.unlink()
    asyncio.run(main_async())
    lines = [
        README_HEAD.format(
            infra=importlib.metadata.version("omnibase-infra"),
            core=importlib.metadata.version("omnibase-core"),
        )
    ]
    for name, topic, _note in WRITTEN:
        lines.append(f"| {name} | {topic} | {FORMS[name]} |\n")
    lines.append(
        "\nEach record's `note` says which package function produced it. All of them pass "
        "`interop/python/validate_records.py`; the two raw request-introspection goldens fail "
        "its `--strict-orchestrator` mode, because the orchestrator's HandlerCatalogRequest "
        "(which also consumes that topic) only reads envelope(ModelTopicCatalogRequest).\n"
    )
    (OUT / "README.md").write_text("".join(lines), encoding="utf-8")
    print(f"wrote {len(WRITTEN)} goldens to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
