"""`/v1/actions`: webhook rules and the outbox's deliveries (dead letters). `admin` scope."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from vigil import actions
from vigil.actions.views import delivery_json, rule_json
from vigil.api.errors import FieldError
from vigil.api.security import Admin, State

router = APIRouter(prefix="/v1/actions", tags=["actions"])


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    bank: str = Field(max_length=64)
    action: str = Field(max_length=64, examples=["remove_content"])
    url: str = Field(max_length=2048)
    classification: str | None = Field(None, max_length=8, examples=["A1"])
    secret_env: str | None = Field(None, max_length=128)
    max_attempts: int = 8


class RuleChange(BaseModel):
    enabled: bool


def _invalid(error: ValueError) -> FieldError:
    message = str(error)
    field = next((f for f in RuleIn.model_fields if message.startswith(f.replace("_", " "))), None)
    return FieldError(["body", field] if field else ["body"], message)


def _not_found(error: actions.ActionError) -> HTTPException:
    return HTTPException(404 if isinstance(error, LookupError) else 409, str(error))


@router.get("/rules")
def list_rules(state: State, _: Admin) -> list[dict[str, Any]]:
    with state.database.session() as session:
        return [rule_json(rule) for rule in actions.list_rules(session)]


@router.post("/rules", status_code=201)
def create_rule(body: RuleIn, state: State, _: Admin) -> dict[str, Any]:
    try:
        with state.database.session() as session:
            return rule_json(actions.create_rule(session, **body.model_dump()))
    except ValueError as error:
        raise _invalid(error) from None
    except actions.ActionError as error:
        raise _not_found(error) from None


@router.patch("/rules/{name}")
def change_rule(name: str, body: RuleChange, state: State, _: Admin) -> dict[str, Any]:
    try:
        with state.database.session() as session:
            return rule_json(actions.set_rule_enabled(session, name, body.enabled))
    except actions.ActionError as error:
        raise _not_found(error) from None


@router.delete("/rules/{name}", status_code=204)
def delete_rule(name: str, state: State, _: Admin) -> Response:
    """Refused (409) while the rule has pending deliveries: disable it instead."""
    try:
        with state.database.session() as session:
            actions.delete_rule(session, name)
    except actions.ActionError as error:
        raise _not_found(error) from None
    except ValueError as error:
        raise HTTPException(409, str(error)) from None
    return Response(status_code=204)


@router.get("/deliveries")
def list_deliveries(
    state: State,
    _: Admin,
    status: Literal["pending", "delivered", "dead"] | None = None,
    rule: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """Deliveries, newest first; `status=dead` lists the dead letters."""
    with state.database.session() as session:
        try:
            items = actions.list_deliveries(session, status=status, rule=rule, limit=limit)
        except actions.ActionError as error:
            raise _not_found(error) from None
        return {
            "depth": actions.outbox_depth(session),
            "deliveries": [delivery_json(session, d) for d in items],
        }


@router.post("/deliveries/{delivery_id}/retry")
def retry_delivery(delivery_id: int, state: State, _: Admin) -> dict[str, Any]:
    """Send a dead delivery again (same Idempotency-Key)."""
    try:
        with state.database.session() as session:
            return delivery_json(session, actions.retry_delivery(session, delivery_id))
    except actions.ActionError as error:
        raise _not_found(error) from None
    except ValueError as error:
        raise HTTPException(409, str(error)) from None
