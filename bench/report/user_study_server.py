"""`pgpis user-study serve`: the study site over HTTP, every answer stored in SQLite as it is given.

Standard library only (``http.server`` + ``sqlite3``). One thread per connection, at most
``MAX_CLIENTS`` at once (more wait in the listen queue), request bodies of at most ``MAX_BODY``
bytes, sockets closed after ``SOCKET_TIMEOUT`` s of silence. Files are served from the site folder
only (no listing, nothing outside it). The API the page uses:

- ``GET  api/study`` -> ``{"format", "id", "key_sha256"}``: tells the page it is served;
- ``GET  api/answers?participant=P`` -> that participant's stored answers (a reload resumes);
- ``POST api/answers`` ``{study, participant, item, answer, response_ms, shown_ms, answered_at}`` ->
  200 stored, 409 when the item already has an answer (the first one stands, and is returned),
  400 for anything invalid (another study, an unknown item, an answer that is not an option).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bench.errors import ConfigError, DataError
from bench.report.user_study import DB_FORMAT, GENERATED, REAL
from bench.report.user_study_site import read_site_data

MAX_CLIENTS = 32
MAX_BODY = 16 * 1024
SOCKET_TIMEOUT = 30
PARTICIPANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}  # fmt: skip (never .json: a key)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    participant TEXT NOT NULL,
    item TEXT NOT NULL,
    answer TEXT NOT NULL,
    response_ms REAL,
    shown_ms REAL,
    answered_at TEXT,          -- the participant's clock (ISO 8601, UTC)
    received_at TEXT NOT NULL, -- the server's clock when stored (ISO 8601, UTC)
    user_agent TEXT,
    PRIMARY KEY (participant, item)
);
"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AnswerStore:
    """The SQLite file of one study: answers keyed by (participant, item), the first one kept."""

    def __init__(self, path: str | Path, study: dict[str, str]):
        self.path = Path(path)
        self.lock = threading.Lock()
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            meta = dict(self.db.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            raise DataError(f"{self.path}: not a usable SQLite answers database ({err})") from None
        wanted = {"format": DB_FORMAT, "study_id": study["id"], "key_sha256": study["key_sha256"]}
        if not meta:
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())
        elif meta != wanted:
            raise ConfigError(
                f"{self.path}: holds the answers of another study ({meta.get('study_id')}, key "
                f"{str(meta.get('key_sha256'))[:12]}); give each study its own --db file"
            )

    def answers(self, participant: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT item, answer, response_ms, shown_ms, answered_at FROM answers "
                "WHERE participant = ? ORDER BY received_at, rowid",
                (participant,),
            ).fetchall()
        keys = ("item", "answer", "response_ms", "shown_ms", "answered_at")
        return [dict(zip(keys, row)) for row in rows]

    def add(self, participant: str, record: dict[str, Any], user_agent: str) -> dict[str, Any] | None:
        """Store one answer; return None, or the answer already stored for that item."""
        with self.lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (participant, record["item"], record["answer"], record["response_ms"], record["shown_ms"],
                 record["answered_at"], now(), user_agent),
            )  # fmt: skip
            if cur.rowcount == 1:
                return None
            row = self.db.execute(
                "SELECT answer FROM answers WHERE participant = ? AND item = ?", (participant, record["item"])
            ).fetchone()
        return {"item": record["item"], "answer": row[0]}

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e8:
        raise ValueError(f"{name} must be a non-negative number of milliseconds")
    return float(value)


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, site: str | Path, db: str | Path, host: str = "127.0.0.1", port: int = 8000):
        self.site = Path(site).resolve()
        if (self.site / "site").is_dir() and not (self.site / "index.html").is_file():
            self.site = self.site / "site"  # the <out> folder of `make` was given
        if (self.site / "key.json").exists():
            raise ConfigError(
                f"{self.site / 'key.json'}: the key must not be in the served folder; move it out"
            )
        data = read_site_data(self.site)
        self.study = data["study"]
        self.items = {it["id"]: it for it in data["items"]}
        self.store = AnswerStore(db, self.study)
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        try:
            super().__init__((host, port), Handler)
        except OSError as err:
            self.store.close()
            raise ConfigError(
                f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
            ) from None

    def valid_answer(self, item: str, answer: Any) -> bool:
        spec = self.items[item]
        if spec["kind"] == "best":
            return answer in {letter for letter, _ in spec["options"]}
        return answer in (REAL, GENERATED)

    def process_request(self, request, client_address):  # noqa: ANN001 (socketserver's signature)
        self.slots.acquire()  # bounded: at most MAX_CLIENTS handler threads
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):  # noqa: ANN001
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a browser that left (a reload cancels its image requests) or went silent: normal
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self.store.close()


class Handler(BaseHTTPRequestHandler):
    server: StudyServer
    timeout = SOCKET_TIMEOUT
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # one line per image would drown the console; answers are in the database

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/api/study":
            return self._json(200, {"format": DB_FORMAT, **self.server.study})
        if url.path == "/api/answers":
            participant = parse_qs(url.query).get("participant", [""])[0]
            if not PARTICIPANT.match(participant):
                return self._json(400, {"error": "invalid participant id"})
            return self._json(200, {"answers": self.server.store.answers(participant)})
        relative = unquote(url.path).lstrip("/") or "index.html"
        path = (self.server.site / relative).resolve()
        if not path.is_relative_to(self.server.site) or not path.is_file() or path.suffix not in TYPES:
            return self._send(404, b"not found\n", "text/plain; charset=utf-8")
        self._send(200, path.read_bytes(), TYPES[path.suffix])

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/api/answers":
            return self._json(404, {"error": "not found"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
        if not 0 < length <= MAX_BODY:
            self.close_connection = True
            return self._json(413, {"error": f"body must be 1 to {MAX_BODY} bytes"})
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError("a JSON object is expected")
            study = body.get("study") or {}
            if study.get("key_sha256") != self.server.study["key_sha256"]:
                raise ValueError("the answer is for another study (key hash differs): reload the page")
            participant, item = body.get("participant"), body.get("item")
            if not isinstance(participant, str) or not PARTICIPANT.match(participant):
                raise ValueError("invalid participant id")
            if item not in self.server.items:
                raise ValueError(f"item {item!r} is not in this study")
            if not self.server.valid_answer(item, body.get("answer")):
                raise ValueError(f"{body.get('answer')!r} is not a valid answer to {item}")
            answered_at = body.get("answered_at")
            record = {
                "item": item,
                "answer": body["answer"],
                "response_ms": _number(body.get("response_ms"), "response_ms"),
                "shown_ms": _number(body.get("shown_ms"), "shown_ms"),
                "answered_at": answered_at[:40] if isinstance(answered_at, str) else None,
            }
        except ValueError as err:
            return self._json(400, {"error": str(err)})
        existing = self.server.store.add(participant, record, self.headers.get("User-Agent", "")[:300])
        if existing is not None:
            return self._json(
                409, {"error": "already answered; the first answer stands", "existing": existing}
            )
        self._json(200, {"stored": True})
