"""Reading a study's answers back: downloaded answers files, the server's SQLite file, CSV sheets.

Every source becomes ``Sheet``s (one per participant) of normalised answers: the option letter in
part 1, ``real``/``generated`` in part 2. These are files from outside, so each is checked: an
answers file or database of another study (its key hash differs) is refused, as is an unknown item,
an answer that is not an option, an item answered twice (with the file and line, or the entry).
CSV sheets (``item,answer`` and optionally ``response_ms``, ``participant``; e.g. typed in from
paper) may carry a byte-order mark, spaces around the header names and values, and be UTF-8 or
UTF-16 (with its byte-order mark); anything else is refused with the line of the first bad byte.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.report.user_study import ANSWERS_FORMAT, DB_FORMAT, GENERATED, REAL

REAL_ANSWERS = {"R": REAL, "REAL": REAL, "G": GENERATED, "GEN": GENERATED, "GENERATED": GENERATED}


@dataclass
class Answer:
    value: str  # option letter (part 1) or real/generated (part 2)
    response_ms: float | None = None
    shown_ms: float | None = None


@dataclass
class Sheet:
    """One participant's answers from one source."""

    source: str  # file, or "db:participant"
    participant: str | None  # None for a CSV sheet without a participant column
    answers: dict[str, Answer] = field(default_factory=dict)
    from_db: bool = False  # the server keeps one sheet per participant: no copies among these

    def content(self) -> tuple:
        """What two copies of one sheet share, whatever their names."""
        return tuple(sorted((k, a.value, a.response_ms) for k, a in self.answers.items()))


def normalise(items: dict[str, dict[str, Any]], item: Any, answer: Any, where: str) -> str | None:
    """The answer in canonical form, None when blank; DataError naming ``where`` when invalid."""
    if not isinstance(item, str) or item not in items:
        raise DataError(f"{where}: item {item!r} is not in this study's key; was it made for another study?")
    if answer is None:
        return None
    if not isinstance(answer, str):
        raise DataError(f"{where}: {item} answer {answer!r} is not text")
    text = answer.strip().upper()
    if not text:
        return None
    spec = items[item]
    if spec["part"] in ("best", "attention"):
        if text not in spec["options"]:
            raise DataError(
                f"{where}: {item} answer {text!r} is not one of the options {', '.join(spec['options'])}"
            )
        return text
    if text not in REAL_ANSWERS:
        raise DataError(f"{where}: {item} answer {text!r} must be R (real) or G (generated)")
    return REAL_ANSWERS[text]


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path}: starts with a UTF-16 byte-order mark but is not UTF-16 ({err.reason})"
            ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {column}; Latin-1 or a "
            'Windows code page?); save the sheet as UTF-8 ("CSV UTF-8" in a spreadsheet) or UTF-16'
        ) from None


def _number(value: Any, where: str, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} {value!r} is not a number of milliseconds") from None
    if isinstance(value, bool) or not 0 <= number < 1e8:
        raise DataError(f"{where}: {name} {value!r} is not a number of milliseconds")
    return number


def read_csv_sheet(path: str | os.PathLike, items: dict[str, dict[str, Any]]) -> Sheet:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read the answer sheet ({err.strerror})") from None
    reader = csv.reader(_decode(path, raw).splitlines())
    header = [name.strip().lower() for name in next(reader, [])]
    if not {"item", "answer"} <= set(header):
        raise DataError(
            f"{path}:1: an answer sheet needs the columns 'item' and 'answer' in its first line "
            f"(comma-separated), got {header}"
        )
    col = {
        name: header.index(name)
        for name in ("item", "answer", "response_ms", "participant")
        if name in header
    }
    sheet = Sheet(str(path), None)
    participants: set[str] = set()
    for row in reader:
        where = f"{path}:{reader.line_num}"
        cells = {name: row[i].strip() if i < len(row) else "" for name, i in col.items()}
        if not any(row) or not cells["item"]:
            continue
        if cells.get("participant"):
            participants.add(cells["participant"])
        value = normalise(items, cells["item"], cells["answer"], where)
        if cells["item"] in sheet.answers:
            raise DataError(f"{where}: item {cells['item']!r} is answered twice")
        if value is not None:
            sheet.answers[cells["item"]] = Answer(
                value, _number(cells.get("response_ms"), where, "response_ms")
            )
    if len(participants) > 1:
        raise DataError(
            f"{path}: one sheet per participant, this one names {', '.join(sorted(participants))}"
        )
    sheet.participant = participants.pop() if participants else None
    return sheet


def read_answers_file(path: str | os.PathLike, key_hash: str, items: dict[str, dict[str, Any]]) -> Sheet:
    """A file downloaded at the end of the study (JSON, format ``pgpis-user-study-answers/1``)."""
    path = Path(path)
    try:
        data = json.loads(_decode(path, path.read_bytes()))
    except OSError as err:
        raise DataError(f"{path}: cannot read the answers file ({err.strerror})") from None
    except ValueError as err:
        raise DataError(f"{path}: not a JSON answers file ({err})") from None
    if not isinstance(data, dict) or data.get("format") != ANSWERS_FORMAT:
        raise DataError(
            f"{path}: not an answers file of format {ANSWERS_FORMAT} (downloaded at the end of the study)"
        )
    study = data.get("study") if isinstance(data.get("study"), dict) else {}
    if study.get("key_sha256") != key_hash:
        raise DataError(
            f"{path}: answers of another study ({study.get('id')}, key {str(study.get('key_sha256'))[:12]}), "
            f"not of this key ({key_hash[:12]}); pass the key.json of the study it was made for"
        )
    participant = data.get("participant")
    if not isinstance(participant, str) or not participant:
        raise DataError(f"{path}: the answers file names no participant")
    answers = data.get("answers")
    if not isinstance(answers, list):
        raise DataError(f"{path}: 'answers' must be a list")
    sheet = Sheet(str(path), participant)
    for i, entry in enumerate(answers):
        where = f"{path}: answers[{i}]"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: not an object")
        value = normalise(items, entry.get("item"), entry.get("answer"), where)
        if entry["item"] in sheet.answers:
            raise DataError(f"{where}: item {entry['item']!r} is answered twice")
        if value is not None:
            sheet.answers[entry["item"]] = Answer(
                value,
                _number(entry.get("response_ms"), where, "response_ms"),
                _number(entry.get("shown_ms"), where, "shown_ms"),
            )
    return sheet


def read_database(path: str | os.PathLike, key_hash: str, items: dict[str, dict[str, Any]]) -> list[Sheet]:
    """Every participant of the SQLite file that `pgpis user-study serve --db` wrote."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: answers database not found (the --db of `pgpis user-study serve`)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            rows = db.execute(
                "SELECT participant, item, answer, response_ms, shown_ms FROM answers "
                "ORDER BY participant, received_at, rowid"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        raise DataError(f"{path}: not an answers database of `pgpis user-study serve` ({err})") from None
    if meta.get("format") != DB_FORMAT:
        raise DataError(f"{path}: not an answers database of format {DB_FORMAT}")
    if meta.get("key_sha256") != key_hash:
        raise DataError(
            f"{path}: answers of another study ({meta.get('study_id')}, key {str(meta.get('key_sha256'))[:12]}), "
            f"not of this key ({key_hash[:12]})"
        )
    sheets: dict[str, Sheet] = {}
    for participant, item, answer, response_ms, shown_ms in rows:
        sheet = sheets.setdefault(
            participant, Sheet(f"{path} (participant {participant})", participant, from_db=True)
        )
        value = normalise(items, item, answer, f"{path}: participant {participant}")
        if value is not None:
            sheet.answers[item] = Answer(value, response_ms, shown_ms)
    return list(sheets.values())


def read_sources(
    key_hash: str,
    items: dict[str, dict[str, Any]],
    files: list[str | os.PathLike],
    db: str | os.PathLike | None,
) -> list[Sheet]:
    """The database's participants first, then each file (JSON answers file or CSV sheet) in order."""
    sheets = read_database(db, key_hash, items) if db else []
    for path in files:
        if Path(path).suffix.lower() == ".json":
            sheets.append(read_answers_file(path, key_hash, items))
        else:
            sheets.append(read_csv_sheet(path, items))
    return sheets
