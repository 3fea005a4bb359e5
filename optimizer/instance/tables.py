"""Tables an instance names (slot tables, the power tree, CDU groups and air zones,
distance and recirculation matrices), as CSV or as an Excel workbook.

Every table is read the same way: UTF-8 with or without a byte-order mark (decoded
when the instance is loaded, :func:`optimizer.instance.files.decode_utf8`), or the first
sheet of an ``.xlsx`` workbook turned into the same CSV text (:func:`xlsx_text`), lines
numbered as a spreadsheet shows them, a cell too long for Python's csv module an error
at its line rather than a crash, and the problems of a table reported together
(:class:`LineProblems`), so that a table exported from a spreadsheet is fixed in one
pass instead of one rerun per bad line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from optimizer.errors import FieldProblem, InstanceError, did_you_mean
from optimizer.instance.files import MAX_TABLE_BYTES, MIB

MAX_REPORTED = 10
"""Bad lines spelt out in one message; the rest are counted."""


class TableProblem(Exception):
    """A table that cannot be read on from ``line`` (a cell over the csv size limit,
    a quote left open)."""

    def __init__(self, line: int, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.fix = fix


def csv_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line, cells) of every line of ``text`` that holds a non-blank cell.

    The line is where the record starts, as a spreadsheet numbers it (a quoted cell
    may span lines)."""
    reader = csv.reader(io.StringIO(text))
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise TableProblem(
                    start,
                    f"a cell is longer than {csv.field_size_limit():,} characters",
                    "close every quote a cell opens; a cell holds one id or number",
                ) from None
            raise TableProblem(
                start,
                f"not a readable CSV ({exc})",
                "save plain comma-separated values; quote a cell holding a comma",
            ) from None
        if any(cell.strip() for cell in cells):
            yield start, cells
        start = reader.line_num + 1


def check_header(file: str, header: list[str], columns: Sequence[str]) -> None:
    """Refuse a table header before any line is read: a column not in ``columns``, one
    written twice, or no ``id`` column (every table keys its lines by id). One header
    check for the slot, device, CDU and air-zone tables, so they refuse alike."""
    unknown = [c for c in header if c not in columns]
    repeated = [c for c in header if header.count(c) > 1]
    if not (unknown or repeated or "id" not in header):
        return
    if unknown:
        problem = f"unknown column {unknown[0]!r}"
    elif repeated:
        problem = f"column {repeated[0]!r} appears twice"
    else:
        problem = "no 'id' column"
    fix = f"columns are {', '.join(columns)}"
    if unknown:
        fix = did_you_mean(unknown[0], list(columns), fix)
    raise InstanceError(file, "header", problem, fix, 1)


def _cell_text(value: object) -> str:
    """A workbook cell as a CSV table writes it: booleans as true/false, whole numbers
    without a decimal point, other numbers in full precision."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def xlsx_text(raw: bytes) -> str:
    """The first sheet of an ``.xlsx`` workbook as CSV text, one line per sheet row, so
    a line number is the row number Excel shows. Formulas give the value Excel last
    computed (a workbook never opened in Excel has none: an empty cell)."""
    import openpyxl  # only when a workbook is given

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        for row in book.worksheets[0].iter_rows(values_only=True):
            writer.writerow([_cell_text(value) for value in row])
            if text.tell() > MAX_TABLE_BYTES:  # a small compressed file may unpack to GBs
                raise FieldProblem(
                    f"the first sheet holds more than {MAX_TABLE_BYTES // MIB} MiB of cells",
                    "split the table or save it as CSV",
                )
    except FieldProblem:
        raise
    except Exception as exc:  # a zip, XML or workbook error of a file that is no .xlsx
        raise FieldProblem(
            f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})",
            "save the table as an Excel workbook (.xlsx) or as CSV UTF-8",
        ) from None
    return text.getvalue()


ErrorAt = Callable[[tuple[str, ...], str, str], InstanceError]
"""Makes an error at an instance field: (field path, problem, fix)."""
FIX_EACH = "fix each line listed"


@dataclass(frozen=True)
class BadLine:
    line: int
    column: str
    problem: str
    fix: str

    def describe(self) -> str:
        column = f"{self.column}: " if self.column else ""
        return f"line {self.line}: {column}{self.problem} (fix: {self.fix})"


class LineProblems:
    """The bad lines of one table, reported together.

    One bad line is reported as it would be alone; several become one message that
    counts them and spells out the first :data:`MAX_REPORTED`, each with its line,
    column and fix."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.shown: list[BadLine] = []

    def add(self, line: int, problem: str, fix: str, column: str = "") -> None:
        self.count += 1
        if len(self.shown) < MAX_REPORTED:
            self.shown.append(BadLine(line, column, problem, fix))

    @contextmanager
    def line(self) -> Iterator[None]:
        """Check one line: an :class:`InstanceError` raised inside is kept, not raised."""
        try:
            yield
        except InstanceError as exc:
            self.add(exc.line or 0, exc.problem, exc.fix, exc.field)

    def listing(self) -> str:
        more = self.count - len(self.shown)
        return f"{self.count} bad lines: " + "; ".join(
            [b.describe() for b in self.shown] + ([f"and {more} more"] if more else [])
        )

    def raise_in_table(self) -> None:
        """Raise the problems as an error in the table file itself, at its first bad line."""
        if self.count == 1:
            bad = self.shown[0]
            raise InstanceError(self.file, bad.column, bad.problem, bad.fix, bad.line)
        if self.count:
            raise InstanceError(self.file, "", self.listing(), FIX_EACH, self.shown[0].line)

    def raise_at(self, error: ErrorAt, field: tuple[str, ...]) -> None:
        """Raise the problems as an error at the instance field that names the table."""
        if self.count == 1:
            bad = self.shown[0]
            column = f" {bad.column}:" if bad.column else ""
            raise error(field, f"{self.file}:{bad.line}:{column} {bad.problem}", bad.fix)
        if self.count:
            raise error(field, f"{self.file}: {self.listing()}", FIX_EACH)
