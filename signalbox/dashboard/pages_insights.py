"""The Insights page and its JSON twin: the months behind today, for the viewer's locations.

Charts are SVG drawn here on the server, not a chart library: four simple shapes (stacked
bars, bars, a heatmap that is an HTML table) need no JavaScript, work without a CDN, print,
and each comes with a table of the same numbers for screen readers and for checking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from signalbox.core.errors import NotFoundError
from signalbox.dashboard.access import (
    TWIN_DEPENDENCIES,
    TWIN_RESPONSES,
    Access,
    AccessDep,
    ApiViewer,
    PageViewer,
    Viewer,
)
from signalbox.dashboard.web import page
from signalbox.overview import insights as overview
from signalbox.overview import locations as overview_locations
from signalbox.workspaces import service as workspaces

# A location id as people carry it; longer is not one (and would only be a 404 anyway).
LocationParam = Query(default="", max_length=64, description="One of the caller's locations; empty: all of them.")

BAND_COLOURS = {"Low": "#3b7d4f", "Medium": "#c27c0e", "High": "#b3261e", overview.NOT_SCORED: "#8a93a3"}
NONE = "n/a"  # a number that cannot be computed yet (no members, no leads, ...)
CHART_W, CHART_H, PLOT_TOP, PLOT_BOTTOM = 360, 200, 16, 172


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    text: str
    colour: str = "#2456d3"


def _compute(access: Access, viewer: Viewer, location: str) -> overview.Insights:
    scope = viewer.scope(location or None)
    if location and viewer.locations is None:
        # Someone who sees every location may still only pick one that exists: each value is
        # a computation and a cache entry of its own.
        known = {loc.id for loc in overview_locations.list_locations(access.db, viewer.workspace_id)}
        if location not in known:
            raise NotFoundError(f"no location {location!r}")
    workspace = workspaces.get_workspace(access.db, viewer.workspace_id)
    return overview.cached_insights(access.db, viewer.workspace_id, workspace.timezone, scope, access.clock.now())


def _pct(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value * 100:.{digits}f} %"


def _money(value: float | None) -> str:
    if value is None:
        return NONE
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def _minutes(value: float | None) -> str:
    if value is None:
        return NONE
    if value < 90:
        return f"{value:.0f} min"
    if value < 48 * 60:
        return f"{value / 60:.1f} h"
    return f"{value / 1440:.1f} days"


def band_bars(found: overview.Insights) -> list[Bar]:
    """One stacked bar per week: each band's share of the visible people."""
    points = found.bands.points
    if not points:
        return []
    step = CHART_W / len(points)
    height = PLOT_BOTTOM - PLOT_TOP
    bars: list[Bar] = []
    for i, point in enumerate(points):
        top = float(PLOT_BOTTOM)
        for band in found.bands.bands:
            share = point.share(band) or 0.0
            if share <= 0:
                continue
            h = share * height
            top -= h
            bars.append(
                Bar(
                    i * step + step * 0.15,
                    top,
                    step * 0.7,
                    h,
                    point.week_ending,
                    f"{band} {_pct(share)}",
                    BAND_COLOURS[band],
                )
            )
    return bars


def churn_bars(found: overview.Insights) -> list[Bar]:
    months = found.months
    peak = max((m.churn or 0.0 for m in months), default=0.0) or 0.01
    step = CHART_W / max(1, len(months))
    height = PLOT_BOTTOM - PLOT_TOP - 14  # room for the value above the tallest bar
    out = []
    for i, m in enumerate(months):
        h = (m.churn or 0.0) / peak * height
        colour = "#8a93a3" if m.partial else "#2456d3"
        out.append(Bar(i * step + step * 0.15, PLOT_BOTTOM - h, step * 0.7, h, m.month[2:], _pct(m.churn, 1), colour))
    return out


def heat(share: float) -> tuple[str, str]:
    """Background and text colour of a heatmap cell: darker is more retained. Between 50 % and
    60 % lightness neither dark nor white text reaches 4.5:1 on this blue, so no cell is there."""
    lightness = 96 - max(0.0, min(1.0, share)) * 68
    if 50 < lightness < 60:
        lightness = 60 if lightness >= 55 else 50
    return f"hsl(214, 62%, {lightness:.0f}%)", "#ffffff" if lightness <= 50 else "#1d2430"


def _context(found: overview.Insights) -> dict[str, Any]:
    widest = max((len(c.active) for c in found.cohorts), default=0)
    return {
        "found": found,
        "band_bars": band_bars(found),
        "churn_bars": churn_bars(found),
        "band_colours": BAND_COLOURS,
        "heat": heat,
        "pct": _pct,
        "money": _money,
        "minutes": _minutes,
        "widest": widest,
        "chart": {"w": CHART_W, "h": CHART_H, "top": PLOT_TOP, "bottom": PLOT_BOTTOM},
    }


router = APIRouter()
pages = APIRouter(include_in_schema=False)


@pages.get("/insights")
async def insights_page(viewer: PageViewer, access: AccessDep, location: str = LocationParam) -> Response:
    try:
        found = await run_in_threadpool(_compute, access, viewer, location)
    except NotFoundError:
        return page(
            "refused.html", 404, user=viewer, csrf_token=viewer.csrf_token, message="There is no such location."
        )
    choices = await run_in_threadpool(
        overview_locations.list_locations, access.db, viewer.workspace_id, viewer.locations
    )
    return page(
        "insights.html",
        user=viewer,
        csrf_token=viewer.csrf_token,
        nav="insights",
        choices=choices,
        location=location,
        **_context(found),
    )


@router.get(
    "/api/v1/insights",
    tags=["dashboard"],
    responses=TWIN_RESPONSES,
    dependencies=TWIN_DEPENDENCIES,
    summary="The Insights page as JSON: churn, cohorts, KPIs, score bands and locations, for the caller's locations",
)
async def insights_twin(viewer: ApiViewer, access: AccessDep, location: str = LocationParam) -> dict[str, Any]:
    found = await run_in_threadpool(_compute, access, viewer, location)
    return found.to_dict()


router.include_router(pages)
