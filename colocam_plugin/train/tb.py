"""TensorBoard view of the training CSV logs, kept in step while training runs.

Stage 2 appends each step's loss terms, their gradient norms, the learning
rate and the foreground mean to ``<out>.log.csv``, and validation scores to
``<out>.val.csv`` (:mod:`colocam_plugin.train.stage2`). The CSV files stay the
record; :class:`CsvMirror` copies their rows, as they are appended, into
TensorBoard event files: one scalar per numeric column, tag
``<prefix>/<column>`` (``train/loss``, ``train/grad_coloc``, ``val/corloc``),
x axis the ``step`` column. Empty cells (a term switched off) are skipped.
The training loop is not touched: a background thread reads the files every
``interval`` seconds, from where it stopped, complete lines only.

A file rewritten from the start (a resumed run drops the rows of the epoch it
repeats) is mirrored again from its first row, after a TensorBoard "session
start" event at that row's step; TensorBoard then drops the events of that
step and later that it had (its ``purge_orphaned_data``), so the curves show
the run as it went on, not the rows of a killed epoch twice. A new mirror
(a resumed run in a new process, the same event folder) starts the same way.

Needs the ``tensorboard`` package (``torch.utils.tensorboard``); it is
imported when the first row is written.

Examples:
    One shot, after training::

        from colocam_plugin.train.tb import mirror_csv_logs
        mirror_csv_logs("runs/tb", {"train": "loc.pt.log.csv", "val": "loc.pt.val.csv"})
"""

from __future__ import annotations

import csv
import logging
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["CsvMirror", "mirror_csv_logs"]

log = logging.getLogger(__name__)

#: the column used as the x axis, never written as a scalar
STEP_COLUMN = "step"


@dataclass
class _Source:
    """One CSV file being followed: where the next unread byte is."""

    path: Path
    inode: int = -1
    offset: int = 0
    header: list[str] | None = None
    rewritten: bool = False


def _number(text: str | None) -> float | None:
    """The cell as a float, or ``None`` (empty, not a number)."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


class CsvMirror:
    """Copy the rows appended to CSV files into TensorBoard scalars.

    Args:
        logdir: the event folder (created with the first row).
        sources: tag prefix -> CSV file (it may not exist yet), e.g.
            ``{"train": "loc.pt.log.csv", "val": "loc.pt.val.csv"}``.
        interval: seconds between two reads by the background thread.

    Use it as a context manager (the thread runs inside the block and a last
    read happens on leaving it), or call :meth:`sync` yourself.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        sources: Mapping[str, str | os.PathLike[str]],
        *,
        interval: float = 5.0,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval: expected seconds > 0, got {interval}")
        self.logdir = Path(logdir)
        self.interval = interval
        self._sources = {tag: _Source(Path(path)) for tag, path in sources.items()}
        self._writer: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False
        self._session = False  # a session start is written before the first rows

    def _new_rows(self, src: _Source) -> list[dict[str, str]]:
        """The complete rows appended to ``src`` since the last read.

        Marks ``src.rewritten`` when the file was replaced or shortened since
        it was last read (then read from its start again).
        """
        try:
            stat = src.path.stat()
        except OSError:
            return []
        if stat.st_ino != src.inode or stat.st_size < src.offset:  # new or rewritten file
            src.rewritten = src.inode != -1
            src.inode, src.offset, src.header = stat.st_ino, 0, None
        if stat.st_size == src.offset:
            return []
        with src.path.open("rb") as fh:
            fh.seek(src.offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:  # half a line: wait for its end
            return []
        src.offset += end + 1
        lines = data[: end + 1].decode("utf-8").splitlines()
        rows = list(csv.reader(lines))
        if src.header is None and rows:
            src.header, rows = rows[0], rows[1:]
        return [dict(zip(src.header or [], row)) for row in rows if row]

    def _read_all(self) -> dict[str, list[tuple[int, dict[str, str]]]]:
        """Tag -> new (step, row) of each source; every source from its start after a rewrite."""
        rows = {tag: self._new_rows(src) for tag, src in self._sources.items()}
        if any(src.rewritten for src in self._sources.values()):
            for src in self._sources.values():
                src.inode, src.offset, src.header, src.rewritten = -1, 0, None, False
            rows = {tag: self._new_rows(src) for tag, src in self._sources.items()}
            self._session = False
        out: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for tag, tag_rows in rows.items():
            steps = [_number(row.get(STEP_COLUMN)) for row in tag_rows]
            out[tag] = [
                (int(step), row)
                for step, row in zip(steps, tag_rows)
                if step is not None and math.isfinite(step)
            ]
        return out

    def sync(self) -> int:
        """Mirror every complete row appended since the last call; return how many.

        The first rows written (and the rows written again after a file was
        rewritten) follow a TensorBoard "session start" at their first step,
        which drops older events of that step and later from the view.

        Raises:
            ImportError: rows to write and no ``tensorboard`` package.
        """
        with self._lock:
            rows = self._read_all()
            steps = [step for tag_rows in rows.values() for step, _ in tag_rows]
            if not steps:
                return 0
            writer = self._scalar_writer()
            if not self._session:
                self._session = True
                from tensorboard.compat.proto.event_pb2 import Event, SessionLog

                start = Event(step=min(steps), session_log=SessionLog(status=SessionLog.START))
                writer._get_file_writer().add_event(start, step=min(steps))
            for tag, tag_rows in rows.items():
                for step, row in tag_rows:
                    for column, text in row.items():
                        value = _number(text)
                        if column != STEP_COLUMN and value is not None:
                            writer.add_scalar(f"{tag}/{column}", value, step)
            writer.flush()
            return len(steps)

    def _scalar_writer(self) -> Any:
        """The ``SummaryWriter``, created (with ``logdir``) on first use."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.logdir))
        return self._writer

    def _sync_quietly(self) -> None:
        """:meth:`sync`; on an error, one warning and no more mirroring (training goes on)."""
        if self._failed:
            return
        try:
            self.sync()
        except Exception as exc:  # the mirror must never stop a training run
            self._failed = True
            log.warning(
                "TensorBoard mirror to %s stopped: %s: %s", self.logdir, type(exc).__name__, exc
            )

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            self._sync_quietly()

    def start(self) -> CsvMirror:
        """Start the background thread that reads the files every ``interval`` seconds."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._follow, name="colocam-tensorboard", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread, mirror the last rows, close the event file."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._sync_quietly()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> CsvMirror:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def mirror_csv_logs(
    logdir: str | os.PathLike[str], sources: Mapping[str, str | os.PathLike[str]]
) -> int:
    """Write every row of the CSV files ``sources`` (prefix -> file) as events in ``logdir``.

    Returns:
        The number of rows written.
    """
    mirror = CsvMirror(logdir, sources)
    try:
        return mirror.sync()
    finally:
        mirror.close()
