"""The routes of the HTTP API: decide, read the record, reviews, policies, administration, health and metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, Response

from lictor.access import ApiKey, KeyRing
from lictor.audit.index import DecisionQuery
from lictor.errors import InputError
from lictor.http.metrics import CONTENT_TYPE, Metrics
from lictor.http.problems import MEDIA_TYPE, Problem, parse_json
from lictor.http.reviews import ReviewApi
from lictor.http.schemas import ACTION_SCHEMA, KEY_REQUEST_SCHEMA, problem_responses
from lictor.model import Action
from lictor.runtime import Gateway

__all__ = ["Api"]

_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
#: The largest leaf index a store can hold (a signed 64-bit integer column).
_MAX_INDEX = 2**63 - 1


class Api:
    """The routes over one gateway, its keys and its limits."""

    def __init__(self, gateway: Gateway, keys: KeyRing, *, policies_path: str, max_batch: int,
                 metrics: Metrics) -> None:
        self.gateway = gateway
        self.keys = keys
        self.policies_path = policies_path
        self.max_batch = max_batch
        self.metrics = metrics

    # ------------------------------------------------------------------ authentication

    def caller(self, request: Request, *scopes: str) -> ApiKey:
        """The key presented as ``Authorization: Bearer KEY``; 401 without a valid one, 403 when its
        scope is not one of ``scopes``."""
        return self.authorize(request.headers.get("authorization", ""), *scopes)

    def authorize(self, header: str, *scopes: str) -> ApiKey:
        """:meth:`caller` from the ``Authorization`` header's value."""
        kind, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="lictor"'}
        if kind.lower() != "bearer" or not token.strip():
            raise Problem(401, "send an API key as `Authorization: Bearer KEY`", headers=challenge)
        key = self.keys.authenticate(token.strip())
        if key is None:
            raise Problem(401, "the API key is unknown or revoked", headers=challenge)
        if key.scope not in scopes:
            raise Problem(403, f"a key with scope {key.scope!r} may not do this; it needs {' or '.join(scopes)}")
        return key

    # ------------------------------------------------------------------ deciding

    async def _decide(self, action: Action, key: ApiKey) -> dict[str, Any]:
        """Decide one action (the record is durable when this returns), awaiting the audit log's
        group commit on the event loop; a repeated ``request_id`` from the same key gets the first
        decision back. The decision index is read and written in the threadpool (it blocks)."""
        index = self.gateway.decision_index
        if action.request_id:
            held = await run_in_threadpool(index.requested, key.id, action.request_id)
            if held is not None:
                self.metrics.replays.inc()
                return await run_in_threadpool(self.replay, held)
        started = time.perf_counter()
        try:
            decision = await self.gateway.adecide(action)
        except Exception as exc:  # fail closed: never an answer that lets the action through
            raise Problem(500, "the decision could not be made; the action is blocked",
                          extra={"verdict": "BLOCK"}) from exc
        self.metrics.observe(decision, action.system, time.perf_counter() - started)
        if action.request_id and decision.audit and decision.audit.get("index") is not None:
            winner = await run_in_threadpool(index.remember_request, key.id, action.request_id, decision.decision_id)
            if winner != decision.decision_id:
                return await run_in_threadpool(self.replay, winner)
        return decision.to_dict()

    def replay(self, decision_id: str) -> dict[str, Any]:
        """A decision as its leaf records it, with the constrained action of a CONSTRAIN read back
        from its sealed payload, so a retried call runs as the first would. The leaf keeps no reason
        messages; they are the rules' own when the policies in force are still those that decided."""
        entry = self.gateway.decision_index.decision(decision_id)
        if entry is None:
            raise Problem(404, f"no decision {decision_id}")
        leaf = self.gateway.leaf(entry.leaf_index)
        action = self.gateway.constrained_action(entry.leaf_index) if entry.verdict == "CONSTRAIN" else None
        current = self.gateway.policies
        messages = ({(p.name, r.name): r.message for p in current.policies for r in p.rules}
                    if leaf.get("policy_revision") == current.revision else {})
        reasons = [{**r, "message": messages.get((r.get("policy"), r.get("rule")), "")}
                   for r in leaf.get("reasons", [])]
        return {"decision_id": entry.decision_id, "verdict": entry.verdict,
                "reasons": reasons, "errors": leaf.get("errors", []),
                "constraints": leaf.get("constraints", []), "action": action, "findings": [],
                "review": {"id": leaf["review"]} if leaf.get("review") else None,
                "audit": {"index": entry.leaf_index, "leaf_hash": self.gateway.leaf_hash(entry.leaf_index)},
                "policy_revision": leaf.get("policy_revision", ""), "timestamp": entry.ts, "duration_us": 0,
                "replayed": True}

    # The two decide routes are served by the lean path (lictor.http.lean) before FastAPI sees them;
    # these endpoints describe them in the OpenAPI document and serve them if it is bypassed.

    async def decide(self, request: Request) -> Response:
        key = self.caller(request, "agent")
        return JSONResponse(await self.decide_one(parse_json(await request.body()), key))

    async def decide_batch(self, request: Request) -> Response:
        key = self.caller(request, "agent")
        return JSONResponse(await self.decide_many(parse_json(await request.body()), key))

    async def decide_one(self, body: Any, key: ApiKey) -> dict[str, Any]:
        """The answer to ``POST /v1/decide`` with the parsed JSON ``body``."""
        return await self._decide(Action.from_dict(body), key)

    async def decide_many(self, body: Any, key: ApiKey) -> dict[str, Any]:
        """The answer to ``POST /v1/decide/batch`` with the parsed JSON ``body``."""
        if not isinstance(body, list):
            raise Problem(422, "the body is a JSON array of actions", errors=[{"path": "$", "message": "expected an array"}])
        if not body:
            raise Problem(422, "the batch is empty", errors=[{"path": "$", "message": "expected at least one action"}])
        if len(body) > self.max_batch:
            raise Problem(422, f"a batch holds at most {self.max_batch} actions, got {len(body)}",
                          errors=[{"path": "$", "message": f"at most {self.max_batch} actions"}])
        actions = [Action.from_dict(item, f"$[{n}]") for n, item in enumerate(body)]
        if any(action.request_id for action in actions):  # each may be a replay: one by one, in order
            return {"decisions": [await self._decide(action, key) for action in actions]}
        started = time.perf_counter()
        try:  # recorded in order, in shared group commits
            decisions = await self.gateway.adecide_many(actions)
        except Exception as exc:  # fail closed: never an answer that lets the actions through
            raise Problem(500, "the decisions could not be made; the actions are blocked",
                          extra={"verdict": "BLOCK"}) from exc
        seconds = time.perf_counter() - started  # each decision waited for the batch
        for action, decision in zip(actions, decisions, strict=True):
            self.metrics.observe(decision, action.system, seconds)
        return {"decisions": [decision.to_dict() for decision in decisions]}

    # ------------------------------------------------------------------ the record

    async def decisions(self, request: Request,
                        system: Annotated[str | None, Query(max_length=256)] = None,
                        verdict: Annotated[Literal["ALLOW", "LOG", "CONSTRAIN", "BLOCK"] | None, Query()] = None,
                        policy: Annotated[str | None, Query(max_length=256)] = None,
                        since: Annotated[datetime | None, Query()] = None,
                        until: Annotated[datetime | None, Query()] = None,
                        cursor: Annotated[int | None, Query(ge=-1, le=_MAX_INDEX)] = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
        self.caller(request, "auditor")
        query = DecisionQuery(system=system, verdict=verdict, policy=policy,
                              since=_stamp(since, "since"), until=_stamp(until, "until"), after=cursor, limit=limit)
        found = await run_in_threadpool(self.gateway.decision_index.decisions, query)
        items = [{"decision_id": d.decision_id, "audit": {"index": d.leaf_index}, "timestamp": d.ts,
                  "system": d.system, "verdict": d.verdict, "policies": list(d.policies)} for d in found]
        more = len(found) == limit
        return JSONResponse({"decisions": items, "next_cursor": found[-1].leaf_index if more else None})

    async def decision(self, request: Request,
                       decision_id: Annotated[str, Path(pattern=_ID)]) -> Response:
        self.caller(request, "auditor")

        def lookup() -> dict[str, Any]:
            entry = self.gateway.decision_index.decision(decision_id)
            if entry is None:
                raise Problem(404, f"no decision {decision_id}")
            try:
                proof: dict[str, Any] | None = self.gateway.proof(entry.leaf_index)
            except Exception:  # not yet covered by a signed checkpoint
                proof = None
            return {"decision_id": entry.decision_id, "timestamp": entry.ts, "system": entry.system,
                    "verdict": entry.verdict, "policies": list(entry.policies),
                    "leaf": self.gateway.leaf(entry.leaf_index), "audit": {"index": entry.leaf_index},
                    "proof": proof}

        return JSONResponse(await run_in_threadpool(lookup))

    async def checkpoint(self, request: Request) -> Response:
        self.caller(request, "auditor")
        note = await run_in_threadpool(self.gateway.latest_checkpoint)
        if note is None:
            raise Problem(404, "the log has no signed checkpoint yet")
        return PlainTextResponse(note, media_type="text/plain; charset=utf-8")

    async def proof(self, request: Request, index: Annotated[int, Path(ge=0, le=_MAX_INDEX)]) -> Response:
        self.caller(request, "auditor")
        return JSONResponse(await run_in_threadpool(self.gateway.proof, index))

    # ------------------------------------------------------------------ policies and administration

    async def policies(self, request: Request) -> Response:
        self.caller(request, "agent", "reviewer", "admin", "auditor")
        current = self.gateway.policies
        return JSONResponse({"revision": current.revision, "default_verdict": current.default_verdict.name,
                             "policies": [p.name for p in current.policies]})

    async def reload(self, request: Request) -> Response:
        key = self.caller(request, "admin")

        def work() -> dict[str, Any]:
            changed = self.gateway.reload(self.policies_path)
            revision = self.gateway.policies.revision
            self.gateway.record_change("policies-reloaded", by=key.id, policy_revision=revision)
            return {"revision": revision, "changed": changed,
                    "policies": [p.name for p in self.gateway.policies.policies]}

        return JSONResponse(await run_in_threadpool(work))

    async def list_keys(self, request: Request) -> Response:
        self.caller(request, "admin")
        keys = await run_in_threadpool(self.keys.list)
        return JSONResponse({"keys": [{**k.to_dict(), "revoked": k.revoked_at is not None} for k in keys]})

    async def create_key(self, request: Request) -> Response:
        caller = self.caller(request, "admin")
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            raise Problem(422, "the body is a JSON object", errors=[{"path": "$", "message": "expected an object"}])
        unknown = sorted(set(body) - {"scope", "user", "roles"})
        if unknown:
            raise Problem(422, f"unknown field {unknown[0]!r}", errors=[{"path": f"$.{unknown[0]}", "message": "unknown field"}])
        scope, user, roles = body.get("scope"), body.get("user"), body.get("roles", [])
        if not isinstance(scope, str):
            raise Problem(422, "scope is a string", errors=[{"path": "$.scope", "message": "expected a string"}])
        if user is not None and not isinstance(user, str):
            raise Problem(422, "user is a string", errors=[{"path": "$.user", "message": "expected a string"}])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Problem(422, "roles is a list of strings", errors=[{"path": "$.roles", "message": "expected a list of strings"}])

        def work() -> dict[str, Any]:
            key, text = self.keys.create(scope, user=user, roles=roles)
            self.gateway.record_change("key-created", by=caller.id, key=key.to_dict())
            return {**key.to_dict(), "key": text}

        return JSONResponse(await run_in_threadpool(work), status_code=201)

    async def revoke_key(self, request: Request, key_id: Annotated[str, Path(pattern=_ID)]) -> Response:
        caller = self.caller(request, "admin")

        def work() -> dict[str, Any]:
            try:
                key = self.keys.revoke(key_id)
            except InputError:
                raise Problem(404, f"no key {key_id}") from None
            self.gateway.record_change("key-revoked", by=caller.id, key=key.to_dict())
            return {**key.to_dict(), "revoked": True}

        return JSONResponse(await run_in_threadpool(work))

    # ------------------------------------------------------------------ operations

    async def healthz(self) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self) -> Response:
        checks = await run_in_threadpool(self.gateway.readiness)
        ready = all(checks.values())
        if not ready:
            failed = ", ".join(name for name, ok in checks.items() if not ok)
            return JSONResponse({"type": "https://lictor.dev/problems/unavailable", "title": "Service unavailable",
                                 "status": 503, "detail": f"not ready: {failed}", "instance": "/readyz",
                                 "checks": checks}, status_code=503, media_type=MEDIA_TYPE)
        return JSONResponse({"status": "ready", "checks": checks})

    async def metrics_text(self) -> Response:
        self.metrics.log_size.set(self.gateway.log.state.size)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    # ------------------------------------------------------------------ wiring

    def router(self) -> APIRouter:
        router = APIRouter()
        add = router.add_api_route
        add("/v1/decide", self.decide, methods=["POST"], summary="Decide one action", tags=["decide"],
            openapi_extra=json_body(ACTION_SCHEMA), responses=problem_responses(400, 401, 403, 413, 422, 500, 503))
        add("/v1/decide/batch", self.decide_batch, methods=["POST"], summary="Decide several actions", tags=["decide"],
            openapi_extra=json_body({"type": "array", "items": ACTION_SCHEMA, "minItems": 1}),
            responses=problem_responses(400, 401, 403, 413, 422, 500, 503))
        add("/v1/decisions", self.decisions, methods=["GET"], summary="List recorded decisions", tags=["record"],
            responses=problem_responses(401, 403, 422, 503))
        add("/v1/decisions/{decision_id}", self.decision, methods=["GET"], tags=["record"],
            summary="One decision with its leaf and inclusion proof", responses=problem_responses(401, 403, 404, 422, 503))
        add("/v1/audit/checkpoint", self.checkpoint, methods=["GET"], summary="The latest signed checkpoint",
            tags=["record"], response_class=PlainTextResponse, responses=problem_responses(401, 403, 404, 503))
        add("/v1/audit/proof/{index}", self.proof, methods=["GET"], summary="An inclusion proof", tags=["record"],
            responses=problem_responses(401, 403, 422, 503))
        ReviewApi(self.gateway, self.caller, self.metrics.review_waiters).add_routes(router)
        add("/v1/policies", self.policies, methods=["GET"], summary="The policies in force", tags=["policies"],
            responses=problem_responses(401, 403, 503))
        add("/v1/admin/reload", self.reload, methods=["POST"], summary="Reload the policies", tags=["admin"],
            responses=problem_responses(401, 403, 422, 503))
        add("/v1/admin/keys", self.list_keys, methods=["GET"], summary="List API keys", tags=["admin"],
            responses=problem_responses(401, 403, 503))
        add("/v1/admin/keys", self.create_key, methods=["POST"], summary="Create an API key", tags=["admin"],
            status_code=201, openapi_extra=json_body(KEY_REQUEST_SCHEMA),
            responses=problem_responses(400, 401, 403, 413, 422, 503))
        add("/v1/admin/keys/{key_id}", self.revoke_key, methods=["DELETE"], summary="Revoke an API key",
            tags=["admin"], responses=problem_responses(401, 403, 404, 422, 503))
        add("/healthz", self.healthz, methods=["GET"], summary="Liveness", tags=["operations"])
        add("/readyz", self.readyz, methods=["GET"], summary="Readiness", tags=["operations"],
            responses=problem_responses(503))
        add("/metrics", self.metrics_text, methods=["GET"], summary="Prometheus metrics", tags=["operations"],
            response_class=PlainTextResponse)
        return router


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI description of a required JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _stamp(value: datetime | None, name: str) -> str | None:
    """A query time as the log writes its timestamps (UTC, microseconds, ``Z``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise Problem(422, f"{name} needs a time zone (e.g. 2026-11-28T15:00:00Z)",
                      errors=[{"path": f"query.{name}", "message": "a time zone is required"}])
    try:
        return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable UTC time
        raise Problem(422, f"{name} is out of range once converted to UTC",
                      errors=[{"path": f"query.{name}", "message": "out of range in UTC"}]) from None

