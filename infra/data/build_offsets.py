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
``protocols.csv`` (protocol id, programme, category). It also writes the demo
catalogue (``demo-catalogue.csv``): one row per sampled serial block whose
project the samples describe, with the project's real name, registry id,
country, OffsetsDB type and category, protocol, vintage and quantity, and a
demo unit price from the stated table below (prices are not data: they are
plausible round figures per kind of project, for browsing). This is a maintainer command: the raw files are never copied into the
repository, and the test suite reads only the derived tables.

Only facts are kept (identifiers, numbers, dates, and project names in the demo
catalogue); no beneficiaries, descriptions or other free text. The samples are registry data that CarbonPlan redistributes; Gold
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


# Demo unit prices in USD per tonne by OffsetsDB category, stated here so that nobody mistakes them
# for market data. Each project gets a whole or half dollar figure within its category's range,
# picked from its registry id so that a rebuild gives the same prices.
DEMO_PRICES = {
    "forest": (8, 18),
    "agriculture": (12, 25),
    "renewable-energy": (2, 6),
    "energy-efficiency": (5, 10),
    "ghg-management": (3, 8),
    "fuel-switching": (3, 7),
    "land-use": (10, 20),
    "carbon-capture": (120, 300),
    "biochar": (130, 180),
    "mineralization": (250, 450),
    "unknown": (5, 10),
}
# OffsetsDB types that take carbon out of the air (every other type avoids or reduces emissions;
# "mine methane capture" and "carbon capture & enhanced oil recovery" are not removals).
REMOVAL_TYPES = ("afforestation/reforestation", "biochar", "direct air capture", "enhanced weathering",
                 "soil carbon", "mineralization")

DEMO_COLUMNS = ["standard", "project", "name", "country", "category", "project_type", "protocol",
                "mechanism", "vintage", "serial", "quantity", "price"]


def country_codes():
    """ISO 3166-1 names to codes, from tzdata's iso3166.tab, with the registries' spellings."""
    path = Path("/usr/share/zoneinfo/iso3166.tab")
    if not path.exists():
        raise SystemExit(f"error: missing {path} (Debian package tzdata)")
    codes = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, name = line.split("\t")[:2]
            codes[name.lower()] = code
    aliases = {"united states": "US", "usa": "US", "viet nam": "VN", "vietnam": "VN",
               "democratic republic of the congo": "CD", "congo, the democratic republic of the": "CD",
               "lao people's democratic republic": "LA", "laos": "LA", "türkiye": "TR", "turkey": "TR",
               "bolivia, plurinational state of": "BO", "bolivia": "BO", "tanzania, united republic of": "TZ",
               "tanzania": "TZ", "republic of korea": "KR", "south korea": "KR", "korea, republic of": "KR",
               "côte d'ivoire": "CI", "cote d'ivoire": "CI", "russia": "RU", "iran": "IR",
               "united kingdom": "GB", "uk": "GB", "the gambia": "GM", "gambia": "GM",
               "myanmar": "MM", "congo": "CG", "republic of the congo": "CG", "eswatini": "SZ", "cabo verde": "CV", "czech republic": "CZ"}
    codes.update(aliases)
    return codes


def project_facts(samples):
    """Registry id (as the serial table writes it) -> (name, country name, methodology)."""
    facts = {}
    path = samples / "verra/transactions.csv"
    for r in rows_of(path, ["ID", "Name", "Country/Area", "Methodology"]):
        facts.setdefault("VCS" + r["ID"], (r["Name"], r["Country/Area"], r["Methodology"]))
    path = samples / "gold-standard/projects.csv"
    for r in rows_of(path, ["GSID", "Project Name", "Country", "Methodology"]):
        facts.setdefault("GS" + r["GSID"], (r["Project Name"], r["Country"], r["Methodology"]))
    for folder in ("american-carbon-registry", "climate-action-reserve"):
        path = samples / folder / "projects.csv"
        for r in rows_of(path, ["Project ID", "Project Name", "Project Site Country"]):
            facts.setdefault(r["Project ID"], (r["Project Name"], r["Project Site Country"],
                                               r.get("Project Methodology/Protocol", "")))
    for name in ("issuances.csv", "retirements.csv"):
        path = samples / "gold-standard" / name
        for r in rows_of(path, ["GSID", "Project Name", "Country", "Methodology"]):
            facts.setdefault("GS" + r["GSID"], (r["Project Name"], r["Country"], r["Methodology"]))
    for name in ("retirements.csv", "cancellations.csv"):
        path = samples / "climate-action-reserve" / name
        for r in rows_of(path, ["Project ID", "Project Name", "Project Site Country"]):
            facts.setdefault(r["Project ID"], (r["Project Name"], r["Project Site Country"],
                                               r.get("Protocol and Version", "")))
    path = samples / "art-trees/projects.csv"
    for r in rows_of(path, ["Program ID", "Program Name", "Program  Country"]):
        name = r["Program Name"]
        if "program" not in name.lower():
            name = f"{name} jurisdictional REDD+ program"
        facts.setdefault(r["Program ID"], (name, r["Program  Country"], ""))
    return facts


def demo_catalogue(serials, samples, types, protocols, berkeley):
    codes = country_codes()
    facts = project_facts(samples)
    known = {}
    for key, value in protocols.items():
        for text in value.get("known-strings", []):
            known.setdefault(text.strip().lower(), key)
    rows, skipped = [], 0
    for standard, serial, quantity, project, vintage in serials:
        if project not in facts:
            skipped += 1
            continue
        name, country, methodology = facts[project]
        code = country if len(country) == 2 and country.isupper() else codes.get(country.strip().lower())
        offsets_id = "GLD" + project[2:] if standard == "GOLD_STANDARD" else project
        kind = "redd+" if standard == "ART" else berkeley.get(offsets_id)
        if not code or kind not in types or not name.strip():
            skipped += 1
            continue
        category = types[kind]["category"]
        protocol = known.get(methodology.strip().lower(), "")
        removal = kind in REMOVAL_TYPES
        low, high = DEMO_PRICES.get(category, DEMO_PRICES["unknown"])
        # Whole dollars and a half within [low, high]: low, low + 0.50, ... high.
        steps = (high - low) * 2 + 1
        price = f"{low + (sum(project.encode()) % steps) / 2:.2f}"
        rows.append((standard, project, " ".join(name.split()), code, category, kind, protocol,
                     "removal" if removal else "avoidance", vintage, serial, quantity, price))
    print(f"demo catalogue: {len(rows)} blocks, {skipped} skipped (no project facts, country "
          f"or OffsetsDB type in the samples)")
    return sorted(rows)


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
    berkeley = config("berkeley-project-types.json")
    demo = demo_catalogue(sorted(rows), samples, types, protocols, berkeley)
    outputs = [
        ("demo-catalogue.csv", DEMO_COLUMNS, demo),
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
