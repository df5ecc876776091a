#!/usr/bin/env python3
"""Export the JSON Schemas of every ONEX wire model the Go fleet decodes or encodes.

Run from the repository root with the interop venv's python, no arguments:

    /tmp/pyv/bin/python interop/python/export_schemas.py

Writes interop/schemas/<ModelName>.json (``model_json_schema(mode="validation")``,
``sort_keys=True, indent=2`` plus a trailing newline) and interop/schemas/index.json.
Output is deterministic: running twice produces identical files.

The authority is the pinned PyPI package omnibase-infra (with its omnibase-core).
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "interop" / "schemas"

_NS_NOTE = (
    "Topic names are the realm-agnostic suffixes; a deployment may prepend a "
    "namespace prefix (TopicResolver default_namespace_prefix, e.g. '<ns>.onex.evt...')."
)

# (file/model name, "module:Class" or None, wire description, extra notes)
# A python spec of None means: no package model exists for this wire form.
MODELS: list[dict[str, Any]] = [
    {
        "model": "ModelEventEnvelope",
        "python": "omnibase_core.models.events.model_event_envelope.ModelEventEnvelope[object]",
        "wire": (
            "Envelope wrapping every enveloped topic's payload (introspection, heartbeat, "
            "ack command, lifecycle events, registration result, topic catalog "
            "query/response/changed, runtime tick). Consumer path: "
            "EventBusSubcontractWiring._deserialize_to_envelope (json.loads; rename "
            "timestamp->envelope_timestamp and source->source_tool when absent; "
            "ModelEventEnvelope[object].model_validate; event_type derived from topic)."
        ),
    },
    {
        "model": "ModelNodeIntrospectionEvent",
        "python": "omnibase_infra.models.registration.model_node_introspection_event.ModelNodeIntrospectionEvent",
        "wire": "onex.evt.platform.node-introspection.v1: envelope payload (MixinNodeIntrospection.publish_introspection via publish_envelope).",
    },
    {
        "model": "ModelNodeHeartbeatEvent",
        "python": "omnibase_infra.models.registration.model_node_heartbeat_event.ModelNodeHeartbeatEvent",
        "wire": "onex.evt.platform.node-heartbeat.v1: envelope payload (MixinNodeIntrospection heartbeat loop via publish_envelope).",
    },
    {
        "model": "ModelNodeRegistrationAcked",
        "python": "omnibase_infra.models.registration.commands.model_node_registration_acked.ModelNodeRegistrationAcked",
        "wire": "onex.cmd.platform.node-registration-acked.v1: envelope payload (MixinNodeIntrospection._on_registration_accepted, key = node_id).",
    },
    {
        "model": "ModelNodeRegistrationAccepted",
        "python": "omnibase_infra.models.registration.events.model_node_registration_accepted.ModelNodeRegistrationAccepted",
        "wire": (
            "onex.evt.platform.node-registration-accepted.v1: BARE model JSON (top-level entity_id/"
            "node_id and correlation_id are what the node ACK listener reads; the envelope is "
            "extra=forbid, so no envelope form can make a node ack)."
        ),
    },
    {
        "model": "ModelNodeRegistrationAckReceived",
        "python": "omnibase_infra.models.registration.events.model_node_registration_ack_received.ModelNodeRegistrationAckReceived",
        "wire": "onex.evt.platform.node-registration-ack-received.v1: envelope payload.",
    },
    {
        "model": "ModelNodeBecameActive",
        "python": "omnibase_infra.models.registration.events.model_node_became_active.ModelNodeBecameActive",
        "wire": "onex.evt.platform.node-became-active.v1: envelope payload.",
    },
    {
        "model": "ModelNodeLivenessExpired",
        "python": "omnibase_infra.models.registration.events.model_node_liveness_expired.ModelNodeLivenessExpired",
        "wire": "onex.evt.platform.node-liveness-expired.v1: envelope payload.",
    },
    {
        "model": "ModelNodeRegistrationAckTimedOut",
        "python": "omnibase_infra.models.registration.events.model_node_registration_ack_timed_out.ModelNodeRegistrationAckTimedOut",
        "wire": "onex.evt.platform.node-registration-ack-timed-out.v1: envelope payload.",
    },
    {
        "model": "ModelNodeRegistrationInitiated",
        "python": "omnibase_infra.models.registration.events.model_node_registration_initiated.ModelNodeRegistrationInitiated",
        "wire": "onex.evt.platform.node-registration-initiated.v1: envelope payload.",
    },
    {
        "model": "ModelNodeRegistrationRejected",
        "python": "omnibase_infra.models.registration.events.model_node_registration_rejected.ModelNodeRegistrationRejected",
        "wire": "onex.evt.platform.node-registration-rejected.v1: envelope payload.",
    },
    {
        "model": "ModelOrchestratorOutput",
        "python": "omnibase_infra.nodes.node_registration_orchestrator.models.model_orchestrator_output.ModelOrchestratorOutput",
        "wire": (
            "onex.evt.platform.node-registration-result.v1: envelope payload. The orchestrator "
            "contract declares event_type 'NodeRegistrationResultEvent' for this topic but the "
            "package has NO model of that name; this (infra's ModelOrchestratorOutput, not "
            "omnibase_core's class of the same name) is the closest typed outcome model."
        ),
    },
    {
        "model": "ModelTopicCatalogRequest",
        "python": "omnibase_infra.models.registration.model_topic_catalog_request.ModelTopicCatalogRequest",
        "wire": (
            "Documented as published on onex.cmd.platform.request-introspection.v1 to trigger a "
            "catalog response; nothing in the package publishes or consumes it (no non-test "
            "import). Not the form the node registry listener reads."
        ),
    },
    {
        "model": "ModelTopicCatalogQuery",
        "python": "omnibase_infra.models.catalog.model_topic_catalog_query.ModelTopicCatalogQuery",
        "wire": "onex.cmd.platform.topic-catalog-query.v1: envelope payload.",
    },
    {
        "model": "ModelTopicCatalogResponse",
        "python": "omnibase_infra.models.catalog.model_topic_catalog_response.ModelTopicCatalogResponse",
        "wire": "onex.evt.platform.topic-catalog-response.v1: envelope payload.",
    },
    {
        "model": "ModelTopicCatalogChanged",
        "python": "omnibase_infra.models.catalog.model_topic_catalog_changed.ModelTopicCatalogChanged",
        "wire": "onex.evt.platform.topic-catalog-changed.v1: envelope payload.",
    },
    {
        "model": "ModelRegistrationSnapshot",
        "python": "omnibase_infra.models.projection.model_registration_snapshot.ModelRegistrationSnapshot",
        "wire": (
            "onex.snapshot.platform.registration-snapshots.v1 (Go fleet topic; the Python runtime "
            "uses onex.evt.platform.registration-snapshots.v1): BARE model JSON, compacted, "
            "key = node id; empty value = tombstone."
        ),
    },
    {
        "model": "ModelDlqMessage",
        "python": "omnibase_infra.nodes.node_dlq_replay_effect.models.model_dlq_message.ModelDlqMessage",
        "wire": (
            "onex.dlq.*: NOT the record form. The DLQ record value is a JSON object that the replay "
            "node parses with ModelDlqMessage.from_kafka_message(json.loads(value), dlq_offset, "
            "dlq_partition) (reads original_topic, original_message{key,value,offset,partition,"
            "message_id}, failure_reason, failure_timestamp, correlation_id, retry_count, "
            "error_type, redacted_fields)."
        ),
    },
    {
        "model": "ModelDlqEvent",
        "python": "omnibase_infra.event_bus.models.model_dlq_event.ModelDlqEvent",
        "wire": "In-process DLQ callback/metrics event of the event bus (not a Kafka record form).",
    },
    {
        "model": "ModelRuntimeTick",
        "python": "omnibase_infra.runtime.models.model_runtime_tick.ModelRuntimeTick",
        "wire": "onex.intent.platform.runtime-tick.v1: envelope payload (event_type platform.runtime-tick).",
    },
]

# Wire forms without a package model (no schema file is written for these).
RAW_FORMS: list[dict[str, Any]] = [
    {
        "model": None,
        "python": None,
        "extra": None,
        "wire": (
            "onex.cmd.platform.request-introspection.v1: RAW JSON, no package model on the consumer "
            "path. MixinNodeIntrospection._process_introspection_request does json.loads(value) and "
            "reads only top-level target_node_id (answers when absent/empty or equal to its node_id, "
            "compared as strings) and correlation_id (invalid -> fresh uuid); an empty value makes "
            "every node answer. Answer: publish_introspection(reason='request'). Related but unused "
            "models: omnibase_core.models.discovery.model_request_introspection_event."
            "ModelRequestIntrospectionEvent (core's request/response mixin; has no target_node_id) and "
            "ModelTopicCatalogRequest (see its entry)."
        ),
    },
]


def _import(spec: str) -> type[BaseModel]:
    generic = None
    if spec.endswith("[object]"):
        spec, generic = spec[: -len("[object]")], object
    module, _, name = spec.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if generic is not None:
        cls = cls[generic]
    return cls


def _extra(cls: type[BaseModel]) -> str:
    extra = cls.model_config.get("extra")
    if extra is None:
        return "ignore"  # pydantic default
    return str(getattr(extra, "value", extra))


def _walk_types(tp: Any, seen: set[Any], out: list[type]) -> None:
    """Collect every BaseModel / Enum class reachable from a type annotation."""
    if tp is None or tp is type(None):
        return
    try:
        if tp in seen:
            return
        seen.add(tp)
    except TypeError:
        pass
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        out.append(tp)
        for field in tp.model_fields.values():
            _walk_types(field.annotation, seen, out)
        return
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        out.append(tp)
        return
    alias_value = getattr(tp, "__value__", None)  # typing.TypeAliasType / typing_extensions
    if alias_value is not None and hasattr(tp, "__name__"):
        out.append(tp)
        _walk_types(alias_value, seen, out)
        return
    for arg in typing.get_args(tp):
        _walk_types(arg, seen, out)
    if isinstance(tp, types.UnionType):
        for arg in tp.__args__:
            _walk_types(arg, seen, out)


def _is_model(c: Any) -> bool:
    return isinstance(c, type) and issubclass(c, BaseModel)


def _defs_extra(cls: type[BaseModel], schema: dict[str, Any]) -> dict[str, str]:
    defs = schema.get("$defs", {})
    if not defs:
        return {}
    found: list[type] = []
    _walk_types(cls, set(), found)
    by_name: dict[str, type] = {}
    for c in found:
        by_name.setdefault(c.__name__, c)
        title = c.model_config.get("title") if _is_model(c) else None
        if title:
            by_name.setdefault(title, c)
    result: dict[str, str] = {}
    for defname, d in sorted(defs.items()):
        c = by_name.get(defname) or by_name.get(d.get("title", ""))
        if c is None:
            raise SystemExit(f"{cls.__name__}: cannot map $defs entry {defname!r} to a class")
        if _is_model(c):
            result[defname] = _extra(c)
        elif isinstance(c, type) and issubclass(c, enum.Enum):
            result[defname] = "enum"
        else:
            result[defname] = "type-alias"
    return result


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> int:
    if len(sys.argv) > 1:
        print("usage: export_schemas.py (no arguments)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {"index.json"}
    entries: list[dict[str, Any]] = []
    for m in MODELS:
        cls = _import(m["python"])
        schema = cls.model_json_schema(mode="validation")
        _dump(OUT / f"{m['model']}.json", schema)
        expected.add(f"{m['model']}.json")
        entries.append(
            {
                "model": m["model"],
                "python": m["python"],
                "schema": f"{m['model']}.json",
                "extra": _extra(cls),
                "defs_extra": _defs_extra(cls, schema),
                "wire": m["wire"],
            }
        )
    for r in RAW_FORMS:
        entries.append({**r, "schema": None, "defs_extra": {}})
    index = {
        "generated_by": "interop/python/export_schemas.py",
        "packages": {
            "omnibase-infra": importlib.metadata.version("omnibase-infra"),
            "omnibase-core": importlib.metadata.version("omnibase-core"),
            "pydantic": importlib.metadata.version("pydantic"),
        },
        "schema_mode": "validation",
        "topic_namespace_note": _NS_NOTE,
        "models": entries,
    }
    _dump(OUT / "index.json", index)
    stale = sorted(p.name for p in OUT.glob("*.json") if p.name not in expected)
    for name in stale:
        (OUT / name).unlink()
    print(f"wrote {len(expected)} files to {OUT.relative_to(ROOT)}" + (f" (removed stale: {stale})" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
