#!/usr/bin/env python3
"""Derive the marketplace's shipped registry facts from the OffsetsDB samples.

Usage:
    python3 infra/data/build_offsets.py [--data DIR] [--out DIR]

Reads the raw registry exports that CarbonPlan's offsets-db-data keeps as test
data (``shared/data/offsets/offsets-db-data-samples``, in the handbook) and
writes ``shared/marketplace/data/serials.csv``: one row per published serial
block, with the facts the registry states beside it (standard, serial text,
quantity, project id, vintage). The marketplace's parser tests are pinned on
it. From OffsetsDB's configuration (``shared/data/offsets/offsets-db-configs``,
MIT) it writes the project taxonomy the marketplace validates against:
``project-types.csv`` (project type, display name, category) and
``protocols.csv`` (protocol id, programme, category). This is a maintainer command: the raw files are never copied into the
repository, and the test suite reads only the derived tables.

Only facts are kept (identifiers, numbers, dates); no names, beneficiaries or
free text. The samples are registry data that CarbonPlan redistributes; Gold
Standard's terms forbid automated download from its registry, and this script
downloads nothing: it reads the sample file a person placed on disk
(DATA-SOURCES.md, "Registry samples").

Python 3 standard library only. The output is sorted and holds no timestamps,
so a re-run over the same inputs is byte-identical.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "shared" / "marketplace" / "data"
SAMPLES = "offsets/offsets-db-data-samples"
CONFIGS = "offsets/offsets-db-configs"

# At most this many rows per reader (a registry's files together), spread evenly over its sorted
# serials so that every shape of prefix appears (CAR-1-... and CAR-ROC-..., many countries).
PER_READER = 40

COLUMNS = ["standard", "serial", "quantity", "project", "vintage"]


def rows_of(path, columns):
    """The rows of a sample, refusing clearly if the file or a column it needs is missing."""
    if not path.exists():
        raise SystemExit(f"error: missing {path} -- the sample layout has changed")
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in columns if rows and c not in rows[0]]
    if missing:
        raise SystemExit(f"error: {path}: columns {missing} not found")
    return rows


def number(text, where):
    try:
        return int(text.replace(",", "").split(".")[0])
    except ValueError:
        raise SystemExit(f"error: {where}: {text!r} is not a quantity")


def verra(data):
    path = data / "verra/transactions.csv"
    columns = ["Serial Number", "Quantity Issued", "ID", "Vintage Start", "Vintage End"]
    for r in rows_of(path, columns):
        yield ("VCS", r["Serial Number"], number(r["Quantity Issued"], path),
               "VCS" + r["ID"], f'{r["Vintage Start"]}/{r["Vintage End"]}')


def gold_standard(data):
    for name in ("issuances.csv", "retirements.csv"):
        path = data / "gold-standard" / name
        for r in rows_of(path, ["Serial Number", "Quantity", "GSID", "Vintage"]):
            yield ("GOLD_STANDARD", r["Serial Number"], number(r["Quantity"], path),
                   "GS" + r["GSID"], r["Vintage"])


def dashed_range(folder, standard, serial_column, quantity_column, project_column):
    columns = [serial_column, quantity_column, project_column, "Vintage"]

    def read(data):
        for name in ("retirements.csv", "cancellations.csv"):
            path = data / folder / name
            for r in rows_of(path, columns):
                yield (standard, r[serial_column], number(r[quantity_column], path),
                       r[project_column], r["Vintage"])
    return read


def cercarbono(data):
    path = data / "cercarbono/retirements.csv"
    for r in rows_of(path, ["serial", "from", "to", "quantity", "project_id", "vintage"]):
        yield ("CERCARBONO", f'{r["serial"]} {r["from"]} to {r["to"]}',
               number(r["quantity"], path), "CDC-" + r["project_id"], r["vintage"])


READERS = [
    ("verra/transactions.csv", verra),
    ("gold-standard/issuances.csv", gold_standard),
    ("american-carbon-registry/retirements.csv",
     dashed_range("american-carbon-registry", "ACR", "Credit Serial Numbers",
                  "Quantity of Credits", "Project ID")),
    ("climate-action-reserve/retirements.csv",
     dashed_range("climate-action-reserve", "CAR", "Offset Credit Serial Numbers",
                  "Quantity of Offset Credits", "Project ID")),
    ("art-trees/retirements.csv",
     dashed_range("art-trees", "ART", "Credit Serial Numbers",
                  "Quantity of Credits", "Program ID")),
    ("cercarbono/retirements.csv", cercarbono),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"raw data folder (default: {DEFAULT_DATA})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    samples = args.data / SAMPLES
    configs = args.data / CONFIGS
    if not samples.is_dir() or not configs.is_dir():
        print(f"error: missing {samples} or {configs} -- build_offsets.py is a "
              f"maintainer command that needs the handbook's shared/data "
              f"folder (pass --data DIR); the test suite does not need it",
              file=sys.stderr)
        return 2

    rows = []
    for _, read in READERS:
        seen = set()
        taken = []
        for row in read(samples):
            if row[1] and row[1] not in seen:
                seen.add(row[1])
                taken.append(row)
        taken.sort()
        step = max(1, len(taken) / PER_READER)
        rows.extend(taken[int(i * step)] for i in range(min(PER_READER, len(taken))))

    def config(name):
        path = configs / name
        if not path.exists():
            raise SystemExit(f"error: missing {path}")
        return json.loads(path.read_text(encoding="utf-8"))

    types = config("type-category-mapping.json")
    protocols = config("all-protocol-mapping.json")
    outputs = [
        ("serials.csv", COLUMNS, sorted(rows)),
        ("project-types.csv", ["type", "name", "category"],
         sorted((key, v["project-type-display-name"], v["category"])
                for key, v in types.items())),
        ("protocols.csv", ["protocol", "program", "category"],
         sorted((key, v.get("program", ""), v.get("category", "unknown"))
                for key, v in protocols.items())),
    ]
    # Every input is read before anything is written, and each file is replaced whole.
    args.out.mkdir(parents=True, exist_ok=True)
    for name, columns, table in outputs:
        write(args.out / name, columns, table)
    return 0


def write(path, columns, rows):
    partial = path.with_suffix(".csv.partial")
    with partial.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    partial.replace(path)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    sys.exit(main())
