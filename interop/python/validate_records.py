#!/usr/bin/env python3
"""Check Kafka records with the pinned omnibase-infra package's own consumer paths.

Usage (from the repository root, with the interop venv's python):

    ... | /tmp/pyv/bin/python interop/python/validate_records.py [--namespace NS] [--skip-unknown]
          [--strict-orchestrator]

stdin: JSON lines, one Kafka record each:
    {"topic": str, "partition": int, "offset": int, "key": str|null,
     "value_b64": str|null, "headers": {str: str}}
``topic`` is the physical name; the namespace prefix (``--namespace`` or env
KAFKA_TOPIC_NAMESPACE, composed by ``omnibase_infra.topics.topic_namespace`` as
``"<ns>." + canonical``) is stripped first.

stdout: one JSON line per failure
    {"topic", "partition", "offset", "error"}     (error: first 2,000 chars)
then a final line
    {"validated": N, "failed": M, "by_topic": {canonical topic: records}, "skipped": K}
(N = records checked, M = of which failed, K = unknown-topic records skipped).
Exit 0 if M == 0, 1 otherwise, 2 on bad input (unparseable line, missing field,
bad base64, invalid namespace).

How each topic is checked (all with package code, nothing re-implemented):

* The record is first converted exactly as the consumer does:
  ``EventBusKafka._kafka_msg_to_model`` (headers -> ``ModelEventHeaders``).
* Envelope topics: ``EventBusSubcontractWiring._deserialize_to_envelope`` (json.loads,
  timestamp/source renames, ``ModelEventEnvelope[object].model_validate``, event_type
  from topic), then ``<PayloadModel>.model_validate(envelope.payload)``.
* node-registration-accepted: BARE ``ModelNodeRegistrationAccepted.model_validate_json``;
  then a real ``MixinNodeIntrospection`` node whose node_id is entity_id gets the record
  through ``_on_registration_accepted`` and must publish exactly one
  ``ModelNodeRegistrationAcked`` envelope on the ACK topic carrying the record's
  correlation_id. An envelope form is a failure (the listener reads entity_id from the
  JSON top level, and the envelope is extra="forbid").
* request-introspection: the node registry listener
  (``_process_introspection_request``) on raw JSON: the addressed node (or, untargeted,
  any node) must answer with exactly one introspection (reason=request, the record's
  correlation_id) and a node with another id must not answer a targeted request. An
  envelope form is checked as the orchestrator reads it (envelope +
  ``ModelTopicCatalogRequest``); ``--strict-orchestrator`` also fails raw requests the
  orchestrator's HandlerCatalogRequest cannot parse.
* registration snapshots: BARE ``ModelRegistrationSnapshot.model_validate_json``; an
  empty/null value is a tombstone and passes.
* onex.dlq.*: the DLQ replay consumer's parse: json.loads, gateway-quarantine check
  (``ModelGatewayQuarantinedDlqRecord.from_payload``), then
  ``ModelDlqMessage.from_kafka_message(payload, dlq_offset, dlq_partition)``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import logging
import os
import sys
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from omnibase_core.enums import EnumNodeKind
from omnibase_core.models.events.model_event_envelope import ModelEventEnvelope
from omnibase_infra.event_bus.event_bus_kafka import EventBusKafka
from omnibase_infra.event_bus.models.config import ModelKafkaEventBusConfig
from omnibase_infra.event_bus.topic_constants import is_dlq_topic
from omnibase_infra.mixins.mixin_node_introspection import MixinNodeIntrospection
from omnibase_infra.models.catalog.model_topic_catalog_changed import ModelTopicCatalogChanged
from omnibase_infra.models.catalog.model_topic_catalog_query import ModelTopicCatalogQuery
from omnibase_infra.models.catalog.model_topic_catalog_response import ModelTopicCatalogResponse
from omnibase_infra.models.discovery.model_introspection_config import ModelIntrospectionConfig
from omnibase_infra.models.projection.model_registration_snapshot import ModelRegistrationSnapshot
from omnibase_infra.models.registration.commands.model_node_registration_acked import (
    ModelNodeRegistrationAcked,
)
from omnibase_infra.models.registration.events.model_node_became_active import ModelNodeBecameActive
from omnibase_infra.models.registration.events.model_node_liveness_expired import (
    ModelNodeLivenessExpired,
)
from omnibase_infra.models.registration.events.model_node_registration_accepted import (
    ModelNodeRegistrationAccepted,
)
from omnibase_infra.models.registration.events.model_node_registration_ack_received import (
    ModelNodeRegistrationAckReceived,
)
from omnibase_infra.models.registration.events.model_node_registration_ack_timed_out import (
    ModelNodeRegistrationAckTimedOut,
)
from omnibase_infra.models.registration.events.model_node_registration_initiated import (
    ModelNodeRegistrationInitiated,
)
from omnibase_infra.models.registration.events.model_node_registration_rejected import (
    ModelNodeRegistrationRejected,
)
from omnibase_infra.models.registration.model_node_heartbeat_event import ModelNodeHeartbeatEvent
from omnibase_infra.models.registration.model_node_introspection_event import (
    ModelNodeIntrospectionEvent,
)
from omnibase_infra.models.registration.model_topic_catalog_request import ModelTopicCatalogRequest
from omnibase_infra.nodes.node_dlq_replay_effect.models.model_dlq_message import ModelDlqMessage
from omnibase_infra.nodes.node_dlq_replay_effect.models.model_gateway_quarantined_dlq_record import (
    ModelGatewayQuarantinedDlqRecord,
)
from omnibase_infra.nodes.node_dlq_replay_effect.models.model_unparseable_dlq_record import (
    DlqRecordUnparseableError,
)
from omnibase_infra.runtime.event_bus_subcontract_wiring import EventBusSubcontractWiring
from omnibase_infra.runtime.models.model_runtime_tick import ModelRuntimeTick
from omnibase_infra.topics import (
    SUFFIX_NODE_INTROSPECTION,
    SUFFIX_NODE_REGISTRATION_ACCEPTED,
    SUFFIX_NODE_REGISTRATION_ACKED,
    SUFFIX_REQUEST_INTROSPECTION,
)
from omnibase_infra.topics.topic_namespace import (
    TopicNamespaceError,
    resolve_topic_namespace,
    strip_topic_namespace,
)

MAX_ERROR = 2000

# The payload model per envelope topic; None means the package reads the envelope
# but has no model for the payload. The registration result is such a topic: the
# package declares it but defines no result event (its nearest model,
# ModelOrchestratorOutput, is an in-process output whose validators refuse JSON
# input and which has no room for the fleet's Consul side), and nothing in the
# package consumes it. Its payload is the fleet's own (docs/interop.md).
ENVELOPE_TOPICS: dict[str, type[BaseModel] | None] = {
    "onex.evt.platform.node-introspection.v1": ModelNodeIntrospectionEvent,
    "onex.evt.platform.node-heartbeat.v1": ModelNodeHeartbeatEvent,
    "onex.cmd.platform.node-registration-acked.v1": ModelNodeRegistrationAcked,
    "onex.evt.platform.node-registration-initiated.v1": ModelNodeRegistrationInitiated,
    "onex.evt.platform.node-registration-ack-received.v1": ModelNodeRegistrationAckReceived,
    "onex.evt.platform.node-became-active.v1": ModelNodeBecameActive,
    "onex.evt.platform.node-liveness-expired.v1": ModelNodeLivenessExpired,
    "onex.evt.platform.node-registration-ack-timed-out.v1": ModelNodeRegistrationAckTimedOut,
    "onex.evt.platform.node-registration-rejected.v1": ModelNodeRegistrationRejected,
    "onex.evt.platform.node-registration-result.v1": None,
    "onex.evt.platform.topic-catalog-response.v1": ModelTopicCatalogResponse,
    "onex.evt.platform.topic-catalog-changed.v1": ModelTopicCatalogChanged,
    "onex.cmd.platform.topic-catalog-query.v1": ModelTopicCatalogQuery,
    "onex.intent.platform.runtime-tick.v1": ModelRuntimeTick,
}
ACCEPTED_TOPIC = SUFFIX_NODE_REGISTRATION_ACCEPTED
REQUEST_TOPIC = SUFFIX_REQUEST_INTROSPECTION
SNAPSHOT_TOPICS = {
    "onex.snapshot.platform.registration-snapshots.v1",  # Go fleet
    "onex.evt.platform.registration-snapshots.v1",  # Python runtime's name
}
# A node id no record addresses: used as the "other" node for targeted requests and as
# the answering node for untargeted ones.
BYSTANDER_NODE_ID = UUID("00000000-0000-4000-8000-00000000b001")


class Failure(Exception):
    """A record did not pass; the message is the report."""


def _pyd(stage: str, exc: ValidationError) -> Failure:
    summary = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    )
    return Failure(f"{stage}: {summary}\n{exc}")


# --------------------------------------------------------------------- node side
class CapturingBus:
    """The fake event bus: records publish_envelope calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, bytes | None]] = []

    async def publish_envelope(self, envelope: Any, topic: str, key: bytes | None = None) -> None:
        self.calls.append((envelope, topic, key))


class ProbeNode(MixinNodeIntrospection):
    def __init__(self, node_id: UUID) -> None:
        self.bus = CapturingBus()
        self.initialize_introspection(
            ModelIntrospectionConfig(
                node_id=node_id,
                node_type=EnumNodeKind.EFFECT,
                node_name="interop_probe_node",
                event_bus=self.bus,
                cache_ttl=3600.0,
            )
        )


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


class Checker:
    def __init__(self, namespace_prefix: str, skip_unknown: bool, strict_orchestrator: bool) -> None:
        self.prefix = namespace_prefix
        self.skip_unknown = skip_unknown
        self.strict_orchestrator = strict_orchestrator
        # A real EventBusKafka, never started: only its record -> ModelEventMessage
        # conversion is used.
        self.kafka = EventBusKafka(
            config=ModelKafkaEventBusConfig(bootstrap_servers="localhost:9092", environment="local")
        )
        self.wiring_shim = SimpleNamespace(
            _logger=logging.getLogger("interop.validate_records.wiring"),
            _derive_event_type_from_topic=EventBusSubcontractWiring._derive_event_type_from_topic,
        )
        self.nodes: dict[str, ProbeNode] = {}
        self.log_capture = _LogCapture()
        mixin_logger = logging.getLogger("omnibase_infra.mixins.mixin_node_introspection")
        mixin_logger.setLevel(logging.WARNING)
        mixin_logger.propagate = False
        mixin_logger.addHandler(self.log_capture)

    def node(self, node_id: UUID) -> ProbeNode:
        key = str(node_id)
        n = self.nodes.get(key)
        if n is None:
            n = self.nodes[key] = ProbeNode(node_id)
        n.bus.calls.clear()
        return n

    # ---------------------------------------------------------------- helpers
    def to_message(self, rec: dict[str, Any], value: bytes | None, topic: str) -> Any:
        key = rec.get("key")
        raw = SimpleNamespace(
            key=key.encode("utf-8") if isinstance(key, str) else None,
            value=value if value is not None else b"",
            offset=rec["offset"],
            partition=rec["partition"],
            headers=[(k, v.encode("utf-8")) for k, v in rec["headers"].items()],
        )
        try:
            return self.kafka._kafka_msg_to_model(raw, topic)
        except ValidationError as e:
            raise _pyd("kafka headers (EventBusKafka._kafka_msg_to_model)", e) from e
        except (ValueError, TypeError) as e:
            raise Failure(f"kafka headers (EventBusKafka._kafka_msg_to_model): {type(e).__name__}: {e}") from e

    def envelope(self, message: Any, topic: str) -> ModelEventEnvelope[object]:
        try:
            return EventBusSubcontractWiring._deserialize_to_envelope(self.wiring_shim, message, topic)  # type: ignore[arg-type]
        except ValidationError as e:
            raise _pyd("envelope (ModelEventEnvelope[object])", e) from e
        except (ValueError, UnicodeDecodeError, TypeError, AttributeError) as e:
            # json.JSONDecodeError is a ValueError; a non-object JSON value fails on `in`/pop.
            raise Failure(f"envelope (EventBusSubcontractWiring._deserialize_to_envelope): {type(e).__name__}: {e}") from e

    @staticmethod
    def payload(model: type[BaseModel], envelope: ModelEventEnvelope[object]) -> BaseModel:
        try:
            return model.model_validate(envelope.payload)
        except ValidationError as e:
            raise _pyd(f"payload ({model.__name__})", e) from e

    # ---------------------------------------------------------------- per topic
    async def check(self, rec: dict[str, Any], value: bytes | None, canonical: str) -> bool:
        """Return False when the topic is unknown and skipped; raise Failure on failure."""
        if canonical in ENVELOPE_TOPICS:
            env = self.envelope(self.to_message(rec, value, canonical), canonical)
            model = ENVELOPE_TOPICS[canonical]
            if model is not None:
                self.payload(model, env)
        elif canonical == ACCEPTED_TOPIC:
            await self.check_accepted(rec, value, canonical)
        elif canonical == REQUEST_TOPIC:
            await self.check_request(rec, value, canonical)
        elif canonical in SNAPSHOT_TOPICS:
            self.to_message(rec, value, canonical)
            if value:  # None or b"": tombstone
                try:
                    ModelRegistrationSnapshot.model_validate_json(value)
                except ValidationError as e:
                    raise _pyd("snapshot (ModelRegistrationSnapshot)", e) from e
        elif is_dlq_topic(canonical):
            self.check_dlq(rec, value)
        else:
            if self.skip_unknown:
                return False
            raise Failure(f"no Python consumer path known for topic {canonical}")
        return True

    async def check_accepted(self, rec: dict[str, Any], value: bytes | None, topic: str) -> None:
        message = self.to_message(rec, value, topic)
        if not value:
            raise Failure("accepted: empty value; the node ACK listener skips it, so no node acks")
        try:
            data = json.loads(value)
        except (ValueError, UnicodeDecodeError) as e:
            raise Failure(f"accepted: value is not JSON: {e}") from e
        if isinstance(data, dict) and ("payload" in data or "envelope_id" in data):
            why = (
                "accepted: envelope form on the accepted topic; the fleet must publish a bare "
                "ModelNodeRegistrationAccepted (the node ACK listener reads entity_id/node_id "
                "from the JSON top level, and the envelope is extra=\"forbid\")"
            )
            try:
                self.envelope(message, topic)
            except Failure as f:
                raise Failure(f"{why}. Envelope validation: {f}") from None
            raise Failure(
                f"{why}. The envelope validates but has no top-level entity_id/node_id, "
                "so no node would ack it."
            )
        try:
            accepted = ModelNodeRegistrationAccepted.model_validate_json(value)
        except ValidationError as e:
            raise _pyd("accepted (ModelNodeRegistrationAccepted, bare)", e) from e

        node = self.node(accepted.entity_id)
        self.log_capture.messages.clear()
        await node._on_registration_accepted(message)
        calls = node.bus.calls
        logs = "; ".join(self.log_capture.messages)
        if len(calls) != 1:
            raise Failure(
                f"accepted: node {accepted.entity_id}'s ACK listener published {len(calls)} "
                f"records, want exactly 1{(' (listener log: ' + logs + ')') if logs else ''}"
            )
        envelope, ack_topic, key = calls[0]
        if ack_topic != SUFFIX_NODE_REGISTRATION_ACKED:
            raise Failure(f"accepted: ACK published on {ack_topic}, want {SUFFIX_NODE_REGISTRATION_ACKED}")
        ack = envelope.payload
        if not isinstance(ack, ModelNodeRegistrationAcked):
            raise Failure(f"accepted: ACK payload is {type(ack).__name__}, want ModelNodeRegistrationAcked")
        if ack.correlation_id != accepted.correlation_id or envelope.correlation_id != accepted.correlation_id:
            raise Failure(
                f"accepted: ACK correlation_id {ack.correlation_id} (envelope {envelope.correlation_id}) "
                f"!= accepted correlation_id {accepted.correlation_id}"
            )
        if ack.node_id != accepted.entity_id:
            raise Failure(f"accepted: ACK node_id {ack.node_id} != entity_id {accepted.entity_id}")

    async def check_request(self, rec: dict[str, Any], value: bytes | None, topic: str) -> None:
        message = self.to_message(rec, value, topic)
        data: Any = None
        if value:
            try:
                data = json.loads(value.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise Failure(f"request-introspection: value is not JSON, the node listener raises: {e}") from e
            if not isinstance(data, dict):
                raise Failure(
                    f"request-introspection: value is a JSON {type(data).__name__}, not an object; "
                    "the node listener raises on .get()"
                )
        enveloped = isinstance(data, dict) and "payload" in data
        if enveloped:
            # The orchestrator's HandlerCatalogRequest path.
            self.payload(ModelTopicCatalogRequest, self.envelope(message, topic))
        elif self.strict_orchestrator:
            try:
                self.envelope(message, topic)
            except Failure as f:
                raise Failure(
                    "request-introspection (--strict-orchestrator): the orchestrator's "
                    f"HandlerCatalogRequest cannot read this raw request: {f}"
                ) from None

        target = data.get("target_node_id") if isinstance(data, dict) else None
        raw_corr = data.get("correlation_id") if isinstance(data, dict) else None
        want_corr: UUID | None = None
        if raw_corr:
            try:
                want_corr = UUID(str(raw_corr))
            except ValueError:
                raise Failure(
                    f"request-introspection: correlation_id {raw_corr!r} is not a UUID; the node "
                    "answers with a fresh correlation id, so the answer cannot be joined"
                ) from None
        if target:
            try:
                target_id = UUID(str(target))
            except ValueError:
                raise Failure(
                    f"request-introspection: target_node_id {target!r} is not a UUID; node ids are "
                    "UUIDs, so no node answers"
                ) from None
            other = self.node(BYSTANDER_NODE_ID if target_id != BYSTANDER_NODE_ID else UUID(int=1))
            await other._process_introspection_request(message)
            if other.bus.calls:
                raise Failure(
                    f"request-introspection: node {other._introspection_node_id} answered a "
                    f"request targeted at {target_id}"
                )
            answering = self.node(target_id)
        else:
            answering = self.node(BYSTANDER_NODE_ID)
        await answering._process_introspection_request(message)
        calls = answering.bus.calls
        if len(calls) != 1:
            hint = ""
            if target and str(target) != str(answering._introspection_node_id):
                hint = (
                    f" (target_node_id {target!r} is not the canonical lowercase form; the "
                    "listener compares strings)"
                )
            raise Failure(
                f"request-introspection: node {answering._introspection_node_id} published "
                f"{len(calls)} answers, want exactly 1{hint}"
            )
        envelope, answer_topic, _key = calls[0]
        payload = envelope.payload
        if answer_topic != SUFFIX_NODE_INTROSPECTION or not isinstance(payload, ModelNodeIntrospectionEvent):
            raise Failure(f"request-introspection: answer on {answer_topic} ({type(payload).__name__})")
        if payload.reason.value != "request":
            raise Failure(f"request-introspection: answer reason {payload.reason.value!r}, want 'request'")
        if want_corr is not None and payload.correlation_id != want_corr:
            raise Failure(
                f"request-introspection: answer correlation_id {payload.correlation_id} != request {want_corr}"
            )

    def check_dlq(self, rec: dict[str, Any], value: bytes | None) -> None:
        self.to_message(rec, value, rec["topic"])
        if value is None:
            raise Failure("dlq: null value; the DLQ consumer yields ModelUnparseableDlqRecord")
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            decoded = value.decode("utf-8", errors="replace")
        try:
            payload = json.loads(decoded)
        except json.JSONDecodeError as e:
            raise Failure(f"dlq: record body is not JSON (ModelUnparseableDlqRecord): {e}") from e
        if not isinstance(payload, dict):
            raise Failure(f"dlq: record body is a JSON {type(payload).__name__}, not an object")
        if ModelGatewayQuarantinedDlqRecord.from_payload(
            payload, dlq_topic=rec["topic"], dlq_partition=rec["partition"], dlq_offset=rec["offset"]
        ) is not None:
            return  # already-quarantined gateway record: a valid, typed form
        try:
            ModelDlqMessage.from_kafka_message(
                payload=payload, dlq_offset=rec["offset"], dlq_partition=rec["partition"]
            )
        except ValidationError as e:
            raise _pyd("dlq (ModelDlqMessage.from_kafka_message)", e) from e
        except DlqRecordUnparseableError as e:
            raise Failure(f"dlq (ModelDlqMessage.from_kafka_message): {e}") from e


# ------------------------------------------------------------------------ driver
def _bad_input(lineno: int, why: str) -> None:
    print(f"validate_records: bad input on line {lineno}: {why}", file=sys.stderr)
    sys.exit(2)


def _parse_line(lineno: int, line: str) -> tuple[dict[str, Any], bytes | None]:
    try:
        rec = json.loads(line)
    except ValueError as e:
        _bad_input(lineno, f"not JSON: {e}")
    if not isinstance(rec, dict):
        _bad_input(lineno, "not a JSON object")
    if not isinstance(rec.get("topic"), str) or not rec["topic"]:
        _bad_input(lineno, "topic must be a non-empty string")
    for f in ("partition", "offset"):
        if not isinstance(rec.get(f), int) or isinstance(rec.get(f), bool):
            _bad_input(lineno, f"{f} must be an integer")
    if rec.get("key") is not None and not isinstance(rec["key"], str):
        _bad_input(lineno, "key must be a string or null")
    headers = rec.get("headers", {})
    if headers is None:
        headers = {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        _bad_input(lineno, "headers must be an object of strings")
    rec["headers"] = headers
    if "value_b64" not in rec:
        _bad_input(lineno, "value_b64 missing")
    raw = rec["value_b64"]
    if raw is None:
        return rec, None
    if not isinstance(raw, str):
        _bad_input(lineno, "value_b64 must be a string or null")
    try:
        return rec, base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        _bad_input(lineno, f"value_b64 is not base64: {e}")
    raise AssertionError("unreachable")


async def run(args: argparse.Namespace) -> int:
    ns = args.namespace if args.namespace is not None else os.environ.get("KAFKA_TOPIC_NAMESPACE", "")
    try:
        prefix = resolve_topic_namespace({"KAFKA_TOPIC_NAMESPACE": ns})
    except TopicNamespaceError as e:
        print(f"validate_records: {e}", file=sys.stderr)
        return 2
    checker = Checker(prefix, args.skip_unknown, args.strict_orchestrator)
    validated = failed = skipped = 0
    by_topic: dict[str, int] = {}
    out = sys.stdout
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        rec, value = _parse_line(lineno, line)
        canonical = strip_topic_namespace(rec["topic"], namespace=prefix)
        try:
            checked = await checker.check(rec, value, canonical)
        except Failure as f:
            checked = True
            failed += 1
            out.write(
                json.dumps(
                    {
                        "topic": rec["topic"],
                        "partition": rec["partition"],
                        "offset": rec["offset"],
                        "error": str(f)[:MAX_ERROR],
                    }
                )
                + "\n"
            )
        if not checked:
            skipped += 1
            continue
        validated += 1
        by_topic[canonical] = by_topic.get(canonical, 0) + 1
    out.write(
        json.dumps(
            {"validated": validated, "failed": failed, "by_topic": dict(sorted(by_topic.items())), "skipped": skipped}
        )
        + "\n"
    )
    return 0 if failed == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default=None, help="topic namespace prefix to strip (default: env KAFKA_TOPIC_NAMESPACE)")
    parser.add_argument("--skip-unknown", action="store_true", help="skip topics with no known Python consumer path")
    parser.add_argument(
        "--strict-orchestrator",
        action="store_true",
        help="also fail raw request-introspection records the orchestrator's HandlerCatalogRequest rejects",
    )
    args = parser.parse_args()
    # The package logs generously; keep stderr for real problems only.
    logging.basicConfig(level=logging.CRITICAL)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
