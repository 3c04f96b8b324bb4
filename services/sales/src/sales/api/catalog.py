"""The row routes the catalogue resources share (products, materials): PATCH and DELETE of one
row by its id, each change in the catalogue's unit of work (commit, relay wake-up, catalogue
cache dropped again after the commit), Administrador only. Written once here; each resource
module says its path, body, answer and use cases."""

# No `from __future__ import annotations`: the endpoints' signatures are built from the
# resource's classes at registration, and FastAPI reads them as objects.

from collections.abc import Awaitable, Callable
from inspect import Parameter, Signature
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from sales.api.deps import Admin, Session, actor, transaction
from sales.application.common import Actor
from service_defaults.bounds import Id32

Update = Callable[[AsyncSession, Actor, int, dict[str, Any]], Awaitable[Any]]
Delete = Callable[[AsyncSession, Actor, int], Awaitable[None]]


def _signature(key: str, *head: tuple[str, Any], returns: Any) -> Signature:
    params = [(key, Id32), *head, ("request", Request), ("session", Session), ("user", Admin)]
    return Signature(
        [Parameter(name, Parameter.KEYWORD_ONLY, annotation=ann) for name, ann in params],
        return_annotation=returns,
    )


def add_row_routes(
    router: APIRouter,
    path: str,
    *,
    key: str,
    names: tuple[str, str],
    body: type[BaseModel],
    public: type[Any],
    render: Callable[[Any], dict[str, Any]],
    update: Update,
    delete: Delete,
    delete_doc: str,
) -> None:
    """`path` ends in `{key}`; `names` are the update and delete operations' names."""

    async def update_row(**kw: Any) -> dict[str, Any]:
        session, changes = kw["session"], kw["body"].model_dump(exclude_unset=True)
        async with transaction(kw["request"], session, catalog=True):
            row = await update(session, actor(kw["user"]), kw[key], changes)
        return render(row)

    async def delete_row(**kw: Any) -> Response:
        async with transaction(kw["request"], kw["session"], catalog=True):
            await delete(kw["session"], actor(kw["user"]), kw[key])
        return Response(status_code=204)

    update_row.__signature__ = _signature(key, ("body", body), returns=dict[str, Any])  # type: ignore[attr-defined]
    delete_row.__signature__ = _signature(key, returns=Response)  # type: ignore[attr-defined]
    router.patch(path, response_model=public, name=names[0])(update_row)
    router.delete(path, status_code=204, name=names[1], description=delete_doc)(delete_row)
