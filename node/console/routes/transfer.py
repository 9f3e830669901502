"""CSV import in the console: the same all-or-nothing ``CsvImport`` as the API and
the command line, with its per-row error report shown as a table. Analysts only."""

from __future__ import annotations

import io

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from ...services.csv_import import MAX_IMPORT_BYTES, ImportReport
from ..auth import Writer
from ..csrf import WriterForm
from ..i18n import N_
from ..pages import page

router = APIRouter(prefix="/console/import")
KINDS = ("licensees", "subjects")


@router.get("", include_in_schema=False)
def import_page(request: Request, viewer: Writer) -> Response:
    return page(
        request,
        viewer,
        "records/import.html",
        kinds=KINDS,
        kind="licensees",
        report=None,
        errors={},
    )


@router.post("", include_in_schema=False)
async def import_file(request: Request, posted: WriterForm) -> Response:
    work, viewer = posted.work, posted.viewer
    kind = posted.text("kind")
    upload = posted.form.get("file")
    errors: dict[str, str] = {}
    data = b""
    if kind not in KINDS:
        errors["kind"] = viewer.t.gettext(N_("Choose one of the options."))
    if not isinstance(upload, UploadFile):
        errors["file"] = viewer.t.gettext(N_("Choose a CSV file."))
    else:
        data = await upload.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            errors["file"] = viewer.t.gettext(N_("Files over 50 MB are refused: split the file."))
        elif not data:
            errors["file"] = viewer.t.gettext(N_("This file is empty."))
    await posted.form.close()  # uploaded files are spooled to disk: remove them now
    if errors:
        return page(
            request,
            viewer,
            "records/import.html",
            status_code=422,
            kinds=KINDS,
            kind=kind,
            report=None,
            errors=errors,
        )
    dry_run = posted.text("dry_run") == "1"

    def run() -> ImportReport:
        report = work.imports().run(kind, io.BytesIO(data), dry_run=dry_run)
        if report.errors_total:
            work.rollback()
        else:
            work.commit()
        return report

    report = await run_in_threadpool(run)
    return page(
        request,
        viewer,
        "records/import.html",
        kinds=KINDS,
        kind=kind,
        report=report,
        errors={},
        status_code=422 if report.errors_total else 200,
    )
