"""Public data sets used by benchmarks and model tests, fetched from PyPI and cached.

CDNOW (Fader & Hardie): every purchase made by the 23,570 customers who first bought at the
CDNOW online store in the first quarter of 1997, up to the end of June 1998. The raw file ships
inside the ``lifetimes`` wheel on PyPI (``lifetimes/datasets/CDNOW_master.txt``; the 1/10
sample of 2,357 customers used in the BG/NBD paper is ``lifetimes/datasets/CDNOW_sample.txt``).
We never install ``lifetimes`` (it pins old pandas/autograd): ``pip download`` fetches the
wheel into a cache folder and the text files are read straight out of the zip.

    .venv/bin/python bench/datasets.py cdnow.csv [--sample]

writes ``customer_id,date,amount`` (ISO dates), ready for
``signalbox import transactions cdnow.csv --customer-column customer_id --timestamp-column date
--amount-column amount --timestamp-format %Y-%m-%d``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "datasets"

LIFETIMES_REQUIREMENT = "lifetimes==0.11.3"
LIFETIMES_WHEEL = "Lifetimes-0.11.3-py3-none-any.whl"
LIFETIMES_WHEEL_SHA256 = "261e3dc89977c2b60767ca6728aaa29d429de0c814635070a749c36555895da8"
CDNOW_MASTER = "lifetimes/datasets/CDNOW_master.txt"
CDNOW_SAMPLE = "lifetimes/datasets/CDNOW_sample.txt"
CDNOW_SUMMARY = "lifetimes/datasets/cdnow_customers_summary.csv"

Transaction = tuple[str, date, float]


class DatasetUnavailableError(RuntimeError):
    """The package carrying the data set could not be downloaded (no network, no pip…)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lifetimes_wheel(cache_dir: Path | str | None = None) -> Path:
    """Path of the cached ``lifetimes`` wheel, downloading it with ``pip download`` if needed."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    target = cache / LIFETIMES_WHEEL
    if target.is_file() and _sha256(target) == LIFETIMES_WHEEL_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", tmp, LIFETIMES_REQUIREMENT,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatasetUnavailableError(f"could not run `{' '.join(cmd)}`: {exc}") from exc
        wheels = [p for p in Path(tmp).iterdir() if p.name.lower() == LIFETIMES_WHEEL.lower()]
        if proc.returncode != 0 or not wheels:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise DatasetUnavailableError(
                f"the CDNOW data set ships in the PyPI package {LIFETIMES_REQUIREMENT!r}, but "
                f"`pip download` of it failed (exit {proc.returncode}): " + " | ".join(detail)
            )
        digest = _sha256(wheels[0])
        if digest != LIFETIMES_WHEEL_SHA256:
            raise DatasetUnavailableError(
                f"downloaded {wheels[0].name} has sha256 {digest}, expected {LIFETIMES_WHEEL_SHA256}"
            )
        os.replace(wheels[0], target)  # atomic: concurrent callers never see a partial file
    return target


def _read_member(member: str, cache_dir: Path | str | None) -> list[str]:
    with zipfile.ZipFile(lifetimes_wheel(cache_dir)) as wheel:
        return wheel.read(member).decode("ascii").splitlines()


def _yyyymmdd(token: str) -> date:
    return date(int(token[:4]), int(token[4:6]), int(token[6:8]))


def cdnow_transactions(cache_dir: Path | str | None = None, *, sample: bool = False) -> list[Transaction]:
    """CDNOW purchases as ``(customer_id, date, amount)`` in file order.

    ``sample=False``: all 69,659 lines for 23,570 customers (``CDNOW_master.txt``).
    ``sample=True``: the 6,919 lines for the 2,357-customer 1/10 sample of the BG/NBD paper
    (``CDNOW_sample.txt``). Customer ids are the 5-digit master ids in both cases. A customer
    can have several lines on one day (separate orders); they are kept as they are.
    """
    rows: list[Transaction] = []
    if sample:
        # " 00004 0001 19970101  2   29.33": master id, sample id, date, CDs, dollars
        for line in _read_member(CDNOW_SAMPLE, cache_dir):
            parts = line.split()
            if parts:
                rows.append((parts[0], _yyyymmdd(parts[2]), float(parts[4])))
    else:
        # " 00001 19970101  1   11.77": id, date, CDs, dollars (first line is a header)
        for line in _read_member(CDNOW_MASTER, cache_dir):
            parts = line.split()
            if parts and parts[0].isdigit():
                rows.append((parts[0], _yyyymmdd(parts[1]), float(parts[3])))
    return rows


def cdnow_published_summary(cache_dir: Path | str | None = None) -> list[tuple[int, int, float, float]]:
    """The 2,357-customer calibration summary shipped beside the raw data, as
    ``(sample_id, x, t_x, T)`` in weeks (calibration period ends 1997-09-30)."""
    lines = _read_member(CDNOW_SUMMARY, cache_dir)
    out: list[tuple[int, int, float, float]] = []
    for row in csv.DictReader(lines):
        out.append((int(row["ID"]), int(row["frequency"]), float(row["recency"]), float(row["T"])))
    return out


def cdnow_to_csv(path: Path | str, cache_dir: Path | str | None = None, *, sample: bool = False) -> int:
    """Write CDNOW as ``customer_id,date,amount`` (ISO dates); returns the number of rows."""
    rows = cdnow_transactions(cache_dir, sample=sample)
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "date", "amount"])
        for customer_id, day, amount in rows:
            writer.writerow([customer_id, day.isoformat(), f"{amount:.2f}"])
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the CDNOW transactions as CSV.")
    parser.add_argument("path", help="CSV file to write")
    parser.add_argument("--sample", action="store_true", help="only the 2,357-customer 1/10 sample")
    parser.add_argument("--cache-dir", default=None, help=f"download cache (default {DEFAULT_CACHE_DIR})")
    args = parser.parse_args(argv)
    n = cdnow_to_csv(args.path, args.cache_dir, sample=args.sample)
    print(f"wrote {n} transactions to {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
