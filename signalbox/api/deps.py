"""Dependencies wired once per app: database, pipeline, clock; admin-key auth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signalbox.api.errors import ApiError
from signalbox.connectors.links import LinkClicks
from signalbox.connectors.service import StripeInbound
from signalbox.connectors.twilio import TwilioInbound
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.settings import Settings
from signalbox.ingestion.service import Pipeline
from signalbox.workspaces import service as workspaces
from signalbox.workspaces.schemas import WorkspaceInfo


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    pipeline: Pipeline
    stripe: StripeInbound
    twilio: TwilioInbound
    links: LinkClicks


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


bearer = HTTPBearer(auto_error=False, description="The workspace's admin key.")


def admin_workspace(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> WorkspaceInfo:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(401, "unauthorized", "send the admin key as `Authorization: Bearer <admin_key>`")
    workspace = workspaces.workspace_for_admin_key(services(request).db, credentials.credentials)
    if workspace is None:
        raise ApiError(401, "unauthorized", "the admin key is not valid")
    return workspace


ServicesDep = Annotated[Services, Depends(services)]
AdminWorkspace = Annotated[WorkspaceInfo, Depends(admin_workspace)]
