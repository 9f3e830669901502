"""Bulk import from CSV and export to CSV or JSON: ``/api/v1/imports/{kind}`` and
``/api/v1/exports/{kind}``, for analysts. The file formats are described in docs/csv.md."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse

from ...schemas.errors import ErrorOut, InvalidOut
from ...services.csv_import import MAX_IMPORT_BYTES, ImportReport
from ...services.export import start_export
from ...web.bodies import read_body
from ..deps import AsWriter

# Browsers on Windows label .csv uploads application/vnd.ms-excel.
CSV_MEDIA_TYPES = frozenset({"text/csv", "application/octet-stream", "application/vnd.ms-excel"})

Kind = Literal["licensees", "subjects"]
router = APIRouter(tags=["import and export"])


async def csv_body(request: Request) -> bytes:
    """The raw request body, refused if it is not CSV or is larger than the limit."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_MEDIA_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the file as text/csv (or application/octet-stream)",
        )
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"files over {MAX_IMPORT_BYTES // (1024 * 1024)} MB are refused; split the file",
    )
    body = await read_body(request, MAX_IMPORT_BYTES)
    if body is None:
        raise too_large
    return body


CSV_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in sorted(CSV_MEDIA_TYPES)
        },
    }
}


@router.post(
    "/imports/{kind}",
    response_model=ImportReport,
    summary="Import records from a CSV file",
    responses={
        413: {"model": ErrorOut, "description": "The file is larger than 50 MB"},
        415: {"model": ErrorOut, "description": "The body is not CSV"},
        422: {
            "model": ImportReport | InvalidOut,
            "description": "Some rows are invalid (the report's errors name row and column; "
            "nothing was written), or the request itself is (kind, dry_run)",
        },
    },
    openapi_extra=CSV_REQUEST_BODY,
)
def import_records(
    work: AsWriter,
    kind: Kind,
    body: Annotated[bytes, Depends(csv_body)],
    dry_run: Annotated[bool, Query(description="Validate only; write nothing")] = False,
) -> Any:
    """All or nothing: every row is validated first, and nothing is written if one is
    invalid. UTF-8 (with or without BOM), `;` or `,` separated; see docs/csv.md."""
    report = work.imports().run(kind, io.BytesIO(body), dry_run=dry_run)
    if report.errors_total:
        return JSONResponse(asdict(report), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    work.commit()
    return report


@router.get(
    "/exports/{kind}",
    summary="Export all records as CSV or JSON",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/json": {}},
            "description": "The records (CSV: UTF-8 with BOM, `,` separated)",
        }
    },
)
def export_records(
    work: AsWriter,
    kind: Kind,
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
) -> StreamingResponse:
    export = start_export(
        work.node.sessions,
        kind,
        format,
        actor=work.actor,
        now=work.now,
        node_id=work.node.settings.node_id,
    )
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "X-Record-Count": str(export.count),
        },
    )
