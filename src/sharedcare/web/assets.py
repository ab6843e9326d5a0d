"""Serving the NHS.UK frontend's compiled CSS, JavaScript and images at `/assets`, plus our own small stylesheet.

`nhsuk-frontend` is installed from the npm registry by the setup scripts (`npm install` in this folder), never
copied into the repository. Its compiled files live in `node_modules/nhsuk-frontend/dist/nhsuk/`; its CSS asks for
images at `/assets/images/...`, so that is where they are served. When the package is missing the application
still works, unstyled, logs a warning once and shows a notice on every page.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger("sharedcare.web")
HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
FRONTEND_FILES = {
    "nhsuk-frontend.min.css",
    "nhsuk-frontend.min.js",
    "nhsuk-frontend.min.css.map",
    "nhsuk-frontend.min.js.map",
}
CACHE = "public, max-age=86400"


def frontend_dist(env: dict[str, str] | None = None) -> Path | None:
    """The compiled nhsuk-frontend folder: $SHAREDCARE_WEB_NODE_MODULES, else node_modules beside this package."""
    environ = os.environ if env is None else env
    roots = [Path(environ["SHAREDCARE_WEB_NODE_MODULES"])] if environ.get("SHAREDCARE_WEB_NODE_MODULES") else []
    roots += [HERE / "node_modules", Path.cwd() / "node_modules"]
    for root in roots:
        dist = root / "nhsuk-frontend" / "dist" / "nhsuk"
        if (dist / "nhsuk-frontend.min.css").is_file():
            return dist
    return None


@dataclass
class Assets:
    dist: Path | None

    @property
    def missing(self) -> bool:
        return self.dist is None

    @classmethod
    def locate(cls) -> Assets:
        dist = frontend_dist()
        if dist is None:
            log.warning(
                "nhsuk-frontend is not installed: the web application will be unstyled. "
                "Run `npm install` in %s (scripts/demo.sh does this).",
                HERE,
            )
        return cls(dist)

    def route(self) -> Route:
        return Route("/assets/{path:path}", self.serve, methods=["GET", "HEAD"])

    async def serve(self, request: Request) -> Response:
        found = self.find(request.path_params["path"])
        if found is None:
            return PlainTextResponse("Not found", status_code=404)
        media = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if found.suffix == ".js":
            media = "text/javascript"
        return FileResponse(found, media_type=media, headers={"cache-control": CACHE})

    def find(self, path: str) -> Path | None:
        """Only known files: our static folder, the frontend's images and manifest, its compiled CSS and JS."""
        parts = Path(path).parts
        if not parts or any(p in ("..", "") or p.startswith(".") for p in parts):
            return None
        candidates = [STATIC / path]
        if self.dist is not None:
            if parts[0] == "images" or path == "manifest.json":
                candidates.append(self.dist / "assets" / path)
            if path in FRONTEND_FILES:
                candidates.append(self.dist / path)
        return next((c for c in candidates if c.is_file()), None)
