"""The FastAPI application of ``melp serve``: the page, the JSON API and its offline OpenAPI docs.

Routes: ``GET /`` (the page, from :mod:`melp.serve` package data), ``GET /static/*``,
``POST /api/predict``, ``GET /api/health``, ``GET /api/model``, ``GET /docs`` (Swagger UI served
from the ``fastapi-offline`` package, no CDN), ``GET /openapi.json``. Errors are JSON
``{"detail": "one line"}`` with a 4xx status; request bodies over the upload limit are refused
with 413 before they are parsed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import melp
from melp.serve.service import PredictError, PredictionService
from melp.serve.uploads import UploadError, UploadFolder, parse_labels

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small form fields beside the files
_PAGE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413 (by Content-Length, or while streaming)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = (self.max_bytes - _FORM_OVERHEAD) / 2**20
        detail = f"upload larger than the server's limit of {limit:g} MiB (--max-upload-mb)"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def create_app(service: PredictionService) -> FastAPI:
    """The application around a loaded :class:`PredictionService`."""
    app = FastAPIOffline(
        title="melp serve",
        version=melp.__version__,
        description=(
            "Drop a 12-lead ECG file (WFDB, GE MUSE / HL7 aECG / Philips XML, DICOM, EDF, CSV, NumPy, MATLAB) "
            "and see what a MELP model sees: the reading, zero-shot findings, a generated report and the beats "
            "each report sentence attends to."
        ),
        static_url="/docs-assets",
    )
    app.add_middleware(BodyLimit, max_bytes=service.config.max_upload_bytes + _FORM_OVERHEAD)
    app.state.service = service
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(PredictError)
    @app.exception_handler(UploadError)
    async def _known_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 400))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where or 'request'}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path == "/":
            response.headers["Content-Security-Policy"] = _PAGE_CSP
        return response

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/health", summary="Liveness and the loaded model's backend")
    def health() -> dict[str, Any]:
        return service.health()

    @app.get("/api/model", summary="Model card: identity, config, training data, presets")
    def model() -> dict[str, Any]:
        return service.model_card()

    @app.post(
        "/api/predict",
        summary="Read an ECG file and run the model on it",
        responses={
            400: {"description": "bad form (no file, too many files, labels on an encoder-only model)"},
            413: {"description": "upload over the size limit"},
            422: {"description": "not a readable ECG, or one the model cannot use; detail is the reader's message"},
        },
    )
    def predict(
        files: Annotated[
            list[UploadFile], File(description="one ECG file, or a WFDB record's .hea with its signal file(s)")
        ],
        labels: Annotated[str, Form(description="own labels to score, comma- or newline-separated")] = "",
        report: Annotated[bool, Form(description="generate the report and its sentence attention")] = True,
        fs: Annotated[float | None, Form(description="sampling rate in Hz (CSV / NumPy files without one)")] = None,
        leads: Annotated[str | None, Form(description="lead names in the file's order (CSV / NumPy)")] = None,
    ) -> dict[str, Any]:
        """The reading (format, fs, leads found/missing, duration, problems), zero-shot findings
        (ranked, own labels included), the generated report with each sentence's attention over
        the tracing and the beats it attends to, the tracing itself and the model's identity."""
        with UploadFolder(max_bytes=service.config.max_upload_bytes) as folder:
            for upload in files:
                folder.add(upload.filename, upload.file)
            primary = folder.primary()
            return service.predict(
                primary,
                name=primary.name,
                labels=parse_labels(labels),
                report=report,
                hints={"fs": fs, "leads": leads},
            )

    return app
