#!/usr/bin/env python3
"""Derive the shipped emission-factor table from the raw third-party data.

Usage:
    python3 infra/data/build_factors.py [--data DIR] [--out FILE]

Reads the raw publications (DESNZ 2023 flat file, EPA GHG Emission Factors
Hub 2023 and 2024 tables, EPA/USEEIO Supply Chain GHG Emission Factors v1.2)
from the handbook's ``shared/data`` folder and writes one normalised table,
``shared/accounting/data/factors.csv``. This is a maintainer command: the
raw files are never copied into the repository and the test suite only
reads the derived table. Every rule applied here is documented in
DATA-SOURCES.md ("How the shipped table is derived").

Python 3 standard library only. All arithmetic is decimal.Decimal; a float
is never created. The output is sorted and contains no timestamps, so a
re-run over the same inputs is byte-identical.
"""

import argparse
import csv
import decimal
import hashlib
import re
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "shared" / "accounting" / "data" / "factors.csv"

COLUMNS = [
    "id", "activityId", "source", "sourceId", "year", "region", "name",
    "category", "scope", "scope3Category", "unitType", "unit",
    "calorificBasis", "co2eKg", "co2", "ch4", "n2o", "gasBasis", "gwpSet",
    "notes",
]

DESNZ_FILE = "emission-factors/desnz/desnz_2023_flat_official_v1.1.csv"
USEEIO_FILE = ("emission-factors/useeio/"
               "SupplyChainGHGEmissionFactors_v1.2_NAICS_CO2e_USD2021.csv")
EPA_DIR = "emission-factors/epa-hub"
EPA_YEARS = (2023, 2024)
EPA_TABLES = {
    # key: file-name part after "epa_hub_<year>_"
    "stationary": "stationary-combustion.csv",
    "mobile_co2": "mobile-combustion-co2.csv",
    "on_road_gasoline":
        "mobile-combustion-ch4-and-n2O-for-on-road-gasoline-vehicles.csv",
    "on_road_diesel_alt":
        "mobile-combustion-ch4-and-n2o-for-on-road-diesel-and-alternative-"
        "fuel-vehicles.csv",
    "non_road": "mobile-combustion-ch4-and-n2O-for-non-road-vehicles.csv",
    "electricity": "electricity.csv",
    "steam": "steam-and-heat.csv",
    "transport": "scope-3-category-4-upstream-transportation-and-"
                 "distribution-and-category-9-downstream-transportation-"
                 "and-distribution.csv",
    "waste": "scope-3-category-5-waste-generated-in-operations-and-"
             "category-12-end-of-life-treatment-of-sold-products.csv",
    "travel": "scope-3-category-6-business-travel-and-category-7-employee-"
              "commuting.csv",
    "gwp": "gwp.csv",
    "blends": "gwp-for-blended-refrigerants.csv",
}

# --------------------------------------------------------------------------
# Decimal handling
# --------------------------------------------------------------------------

# Source values are rounded to 15 significant digits (ROUND_HALF_EVEN).
NORM = decimal.Context(prec=15, rounding=decimal.ROUND_HALF_EVEN,
                       traps=[decimal.InvalidOperation])
# Derived arithmetic must be exact: any rounding raises.
EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN,
                        traps=[decimal.InvalidOperation, decimal.Inexact,
                               decimal.Rounded, decimal.Overflow])

LB_TO_KG = Decimal("0.45359237")   # exact by definition
GWP_AR5_CH4 = Decimal("28")
GWP_AR5_N2O = Decimal("265")
THOUSAND = Decimal("1000")

ROUNDED_INPUTS = Counter()   # source -> number of inputs changed by rounding


def dec(text, source):
    """Parse a source number, rounded to 15 significant digits."""
    text = text.strip()
    exact = Decimal(text)
    if not exact.is_finite():
        raise SystemExit(f"error: non-finite number {text!r} in {source}")
    value = NORM.create_decimal(text)
    if value != exact:
        ROUNDED_INPUTS[source] += 1
    return value


def opt_dec(text, source):
    text = (text or "").strip()
    return dec(text, source) if text else None


def g_to_kg(value):
    return EXACT.divide(value, THOUSAND)


def lb_to_kg(value):
    return EXACT.multiply(value, LB_TO_KG)


GWP = {"AR4": (Decimal("25"), Decimal("298")),
       "AR5": (GWP_AR5_CH4, GWP_AR5_N2O)}

# The GWP set each EPA Hub edition publishes on: the 2023 edition still used
# AR4; the 2024 edition moved to AR5 ("a change from the previous version").
EPA_EDITION_GWP = {2023: "AR4", 2024: "AR5"}


def gwp_total(co2, ch4, n2o, gwp_set):
    """co2 + GWP(CH4)*ch4 + GWP(N2O)*n2o (kg of each gas), exact. co2 may be
    None."""
    gwp_ch4, gwp_n2o = GWP[gwp_set]
    total = Decimal(0)
    if co2 is not None:
        total = EXACT.add(total, co2)
    total = EXACT.add(total, EXACT.multiply(gwp_ch4, ch4))
    total = EXACT.add(total, EXACT.multiply(gwp_n2o, n2o))
    return total


def fmt(value):
    """Plain decimal text: no exponent, no trailing zeros, no trailing '.'."""
    if value is None:
        return ""
    if value.is_zero():
        return "0"
    value = value.normalize(EXACT)
    sign, digits, exponent = value.as_tuple()
    # rust_decimal holds at most 28 fractional digits and ~28 significant
    # digits; refuse to write anything it could not parse losslessly.
    if len(digits) > 28 or exponent < -28:
        raise SystemExit(f"error: value {value} exceeds rust_decimal range")
    text = format(value, "f")
    assert "e" not in text.lower() and not text.endswith(".")
    return text


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def slug(text):
    text = text.strip().lower().replace("&", " and ").replace("%", " pct ")
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not text:
        raise SystemExit(f"error: empty slug for {text!r}")
    return text


HEADERS = {}   # path -> header row of the CSV


def read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        HEADERS[path] = reader.fieldnames or []
    return rows


def need(columns, rows, path):
    missing = [h for h in columns if h not in HEADERS[path]]
    if missing:
        raise SystemExit(f"error: {path}: expected column(s) {missing} "
                         f"not found; the source layout has changed")


def make_row(**kw):
    row = {c: "" for c in COLUMNS}
    for key, value in kw.items():
        if key not in row:
            raise KeyError(key)
        row[key] = value if isinstance(value, str) else str(value)
    return row


SKIPPED = Counter()   # reason -> count
OVERRIDES_APPLIED = Counter()  # "source: from -> to" -> count


# --------------------------------------------------------------------------
# DESNZ 2023
# --------------------------------------------------------------------------

DESNZ_UNITS = {
    # UOM: (unitType, unit, calorificBasis)
    "kWh (Gross CV)": ("energy", "kWh", "gross"),
    "kWh (Net CV)": ("energy", "kWh", "net"),
    "kWh": ("energy", "kWh", ""),
    "GJ": ("energy", "GJ", ""),
    "litres": ("volume", "l", ""),
    "cubic metres": ("volume", "m3", ""),
    "million litres": ("volume", "Ml", ""),
    "kg": ("mass", "kg", ""),
    "tonnes": ("mass", "t", ""),
    "km": ("distance", "km", ""),
    "miles": ("distance", "mi", ""),
    "passenger.km": ("passenger-distance", "passenger.km", ""),
    "tonne.km": ("weight-distance", "tonne.km", ""),
    "Room per night": ("count", "room_night", ""),
    "per FTE Working Hour": ("count", "fte_hour", ""),
}

DESNZ_SCOPE3_CATEGORY = {
    "Business travel- air": 6,
    "Business travel- land": 6,
    "Business travel- sea": 6,
    "Hotel stay": 6,
    "Transmission and distribution": 3,
    "UK electricity T&D for EVs": 3,
    "Waste disposal": 5,
    "Material use": 1,
    "Water supply": 1,
    "Water treatment": 5,
    "Freighting goods": 4,
    "Homeworking": 7,
    "Managed assets- vehicles": 8,
    "Managed assets- electricity": 8,
    # every Level 1 starting with "WTT-" -> 3 (handled in code)
}

DESNZ_SCOPES = {"Scope 1": "1", "Scope 2": "2", "Scope 3": "3",
                "Outside of Scopes": "outside"}

# Hotel stay: Level 3 is the country of the hotel -> region.
HOTEL_COUNTRIES = {
    "UK": "GB", "UK (London)": "GB", "Argentina": "AR", "Australia": "AU",
    "Austria": "AT", "Belgium": "BE", "Brazil": "BR", "Canada": "CA",
    "Chile": "CL", "China": "CN", "Colombia": "CO", "Costa Rica": "CR",
    "Czech Republic": "CZ", "Egypt": "EG", "Fiji": "FJ", "Finland": "FI",
    "France": "FR", "Germany": "DE", "Greece": "GR",
    "Hong Kong, China": "HK", "India": "IN", "Indonesia": "ID",
    "Ireland": "IE", "Israel": "IL", "Italy": "IT", "Japan": "JP",
    "Jordan": "JO", "Kazakhstan": "KZ", "Korea": "KR",
    "Macau, China": "MO", "Malaysia": "MY", "Maldives": "MV",
    "Mexico": "MX", "Netherlands": "NL", "New Zealand": "NZ", "Oman": "OM",
    "Panama": "PA", "Peru": "PE", "Philippines": "PH", "Poland": "PL",
    "Portugal": "PT", "Qatar": "QA", "Romania": "RO",
    "Russian Federation": "RU", "Saudi Arabia": "SA", "Singapore": "SG",
    "South Africa": "ZA", "Spain": "ES", "Switzerland": "CH",
    "Taiwan, China": "TW", "Thailand": "TH", "Turkey": "TR",
    "United Arab Emirates": "AE", "United States": "US", "Vietnam": "VN",
}
# Sub-national hotel rows keep a qualifier in activityId (region is GB).
HOTEL_QUALIFIER = {"UK (London)": "london"}

# Curated activityId overrides: (Level 1, Level 2, Level 3) -> activityId
DESNZ_OVERRIDES = {
    ("UK electricity", "Electricity generated", "Electricity: UK"):
        "electricity-grid",
    ("Fuels", "Gaseous fuels", "Natural gas"): "fuel-natural_gas",
    ("Fuels", "Liquid fuels", "Diesel (average biofuel blend)"):
        "fuel-diesel",
    ("Fuels", "Liquid fuels", "Petrol (average biofuel blend)"):
        "fuel-petrol",
}

# Level 4 values that are only a unit label (they repeat the UOM).
DESNZ_UNIT_LEVEL4 = {"kWh"}

DESNZ_GAS = {
    "kg CO2e of CO2 per unit": "co2",
    "kg CO2e of CH4 per unit": "ch4",
    "kg CO2e of N2O per unit": "n2o",
}
DESNZ_NON_EMISSION = {"kWh (Net CV)", "kWh (net)"}

DESNZ_SUM_CHECK = {"groups": 0, "exact": 0, "within_1e-12": 0,
                   "differ": [], "max_rel": Decimal(0)}


def desnz_rows(data_dir):
    path = data_dir / DESNZ_FILE
    raw = read_csv(path)
    value_col = "GHG Conversion Factor 2023"
    need(["ID", "Scope", "Level 1", "Level 2", "Level 3", "Level 4",
          "Column Text", "UOM", "GHG/Unit", value_col], raw, path)

    groups = defaultdict(list)
    order = []
    for rec in raw:
        rid = rec["ID"].strip()
        if not rid:
            # the blank separator row and the "END" marker row
            SKIPPED["desnz: blank / END marker row"] += 1
            continue
        prefix = rid.rsplit("_", 1)[0] + "_"
        if prefix not in groups:
            order.append(prefix)
        groups[prefix].append(rec)

    out = []
    for prefix in order:
        recs = groups[prefix]
        first = recs[0]
        ident = tuple(first[k] for k in ("Scope", "Level 1", "Level 2",
                                         "Level 3", "Level 4",
                                         "Column Text", "UOM"))
        for rec in recs:
            if tuple(rec[k] for k in ("Scope", "Level 1", "Level 2",
                                      "Level 3", "Level 4", "Column Text",
                                      "UOM")) != ident:
                raise SystemExit(f"error: DESNZ group {prefix} mixes "
                                 f"activities")
        ghg_units = {rec["GHG/Unit"] for rec in recs}
        if ghg_units & DESNZ_NON_EMISSION:
            if ghg_units - DESNZ_NON_EMISSION:
                raise SystemExit(f"error: DESNZ group {prefix} mixes energy "
                                 f"and emission rows")
            SKIPPED["desnz: SECR energy-conversion rows (kWh (Net CV) / "
                    "kWh (net))"] += len(recs)
            continue
        total = None
        gases = {}
        co2_id = None
        for rec in recs:
            value = rec[value_col].strip()
            ghg = rec["GHG/Unit"]
            if not value:
                SKIPPED["desnz: empty value (not applicable)"] += 1
                continue
            if ghg == "kg CO2e":
                total = (rec["ID"], dec(value, "desnz"))
            elif ghg in DESNZ_GAS:
                gases[DESNZ_GAS[ghg]] = dec(value, "desnz")
                if DESNZ_GAS[ghg] == "co2":
                    co2_id = rec["ID"]
            else:
                raise SystemExit(f"error: unknown DESNZ GHG/Unit {ghg!r}")
        if (total is None and first["Scope"] == "Outside of Scopes"
                and set(gases) == {"co2"}):
            # Biogenic CO2, published as a CO2 row only: the row is its own
            # total (kg CO2e of CO2 = kg CO2).
            total = (co2_id, gases["co2"])
        if total is None:
            if gases:
                SKIPPED["desnz: per-gas rows in groups without a kg CO2e "
                        f"total ({first['Scope']})"] += len(gases)
            continue
        source_id, co2e = total
        if gases and set(gases) not in ({"co2", "ch4", "n2o"}, {"co2"}):
            raise SystemExit(f"error: DESNZ group {prefix} has partial "
                             f"per-gas values {sorted(gases)}")

        if len(gases) == 3:
            DESNZ_SUM_CHECK["groups"] += 1
            s = EXACT.add(EXACT.add(gases["co2"], gases["ch4"]),
                          gases["n2o"])
            if s == co2e:
                DESNZ_SUM_CHECK["exact"] += 1
            else:
                diff = abs(EXACT.subtract(s, co2e))
                rel = (decimal.Context(prec=6).divide(diff, abs(co2e))
                       if not co2e.is_zero() else Decimal("Infinity"))
                DESNZ_SUM_CHECK["max_rel"] = max(DESNZ_SUM_CHECK["max_rel"],
                                                 rel)
                if rel <= Decimal("1e-12"):
                    DESNZ_SUM_CHECK["within_1e-12"] += 1
                else:
                    DESNZ_SUM_CHECK["differ"].append(
                        (source_id, fmt(co2e), fmt(s), rel))

        scope_txt, l1, l2, l3, l4, col_text, uom = ident
        if uom not in DESNZ_UNITS:
            raise SystemExit(f"error: unmapped DESNZ unit {uom!r}")
        unit_type, unit, basis = DESNZ_UNITS[uom]
        if scope_txt not in DESNZ_SCOPES:
            raise SystemExit(f"error: unknown DESNZ scope {scope_txt!r}")
        scope = DESNZ_SCOPES[scope_txt]
        scope3 = ""
        if scope == "3":
            if l1.startswith("WTT-"):
                scope3 = "3"
            elif l1 in DESNZ_SCOPE3_CATEGORY:
                scope3 = str(DESNZ_SCOPE3_CATEGORY[l1])
            else:
                raise SystemExit(f"error: no scope 3 category for DESNZ "
                                 f"Level 1 {l1!r}")

        if l4.strip() in DESNZ_UNIT_LEVEL4:
            l4 = ""
        levels = [x.strip() for x in (l1, l2, l3, l4) if x.strip()]
        col_text = col_text.strip()
        region = "GB"
        notes = []
        if l1 == "Hotel stay":
            country = l3.strip()
            if country not in HOTEL_COUNTRIES:
                raise SystemExit(f"error: DESNZ hotel country {country!r} "
                                 f"has no ISO 3166-1 code in HOTEL_COUNTRIES")
            region = HOTEL_COUNTRIES[country]
            parts = [slug(l1), slug(l2)]
            if country in HOTEL_QUALIFIER:
                parts.append(HOTEL_QUALIFIER[country])
            activity = "-".join(parts)
            category = f"{l1} > {l2}"
            name = f"Hotel stay, {country}"
        else:
            activity = "-".join(slug(x) for x in levels +
                                ([col_text] if col_text else []))
            key = (l1, l2, l3)
            if key in DESNZ_OVERRIDES:
                new = DESNZ_OVERRIDES[key]
                OVERRIDES_APPLIED[f"desnz: {activity} -> {new}"] += 1
                activity = new
            if len(levels) >= 3:
                category = " > ".join(levels[:2])
                name = ", ".join(levels[2:] + ([col_text] if col_text
                                               else []))
            else:
                category = levels[0]
                name = ", ".join(levels[1:] + ([col_text] if col_text
                                               else []))
        if "RF" in col_text.split():
            notes.append(col_text)
        if l1.startswith("WTT-"):
            notes.append("well-to-tank (upstream fuel supply)")
        if scope == "outside":
            notes.append("biogenic CO2 of the biofuel content, reported "
                         "outside the scopes")

        out.append(make_row(
            activityId=activity, source="desnz", sourceId=source_id,
            year=2023, region=region, name=name, category=category,
            scope=scope, scope3Category=scope3, unitType=unit_type,
            unit=unit, calorificBasis=basis, co2eKg=fmt(co2e),
            co2=fmt(gases.get("co2")), ch4=fmt(gases.get("ch4")),
            n2o=fmt(gases.get("n2o")),
            gasBasis="co2e" if gases else "", gwpSet="AR5",
            notes="; ".join(notes)))
    return out


# --------------------------------------------------------------------------
# EPA GHG Emission Factors Hub 2023 + 2024
# --------------------------------------------------------------------------

EPA_SOURCE = "epa_hub"

# 2023 edition spells the coal ranks with a trailing " Coal".
EPA_FUEL_ALIASES = {
    "Anthracite Coal": "Anthracite",
    "Bituminous Coal": "Bituminous",
    "Sub-bituminous Coal": "Sub-bituminous",
    "Lignite Coal": "Lignite",
}
EPA_KRAFT_CATEGORY = "Biomass Fuels - Kraft Pulping Liquor, by Wood Furnish"
# Rich-text footnote markers that the intermediate extraction glued on.
EPA_FOOTNOTE_NAMES = {
    "Passenger Car A": "Passenger Car",
    "Light-Duty Truck B": "Light-Duty Truck",
    "Medium- and Heavy-Duty TruckC": "Medium- and Heavy-Duty Truck",
}
# ASHRAE renamed R-507 to R-507A; the 2023 edition uses the old name.
EPA_BLEND_ALIASES = {"R-507": "R-507A"}

EPA_PHYSICAL_UNITS = {
    "short ton": ("mass", "short_ton"),
    "scf": ("volume", "scf"),
    "gallon": ("volume", "gal_us"),
}
EPA_DISTANCE_UNITS = {
    "vehicle-mile": ("distance", "mi"),
    "passenger-mile": ("passenger-distance", "passenger.mi"),
    "ton-mile": ("weight-distance", "short_ton.mi"),
}

EPA_OVERRIDES = {
    ("stationary", "Natural Gas"): "fuel-natural_gas",
    ("mobile_co2", "Motor Gasoline"): "fuel-petrol",
    ("mobile_co2", "Diesel Fuel"): "fuel-diesel",
}

BIOGENIC_NOTE = "CO2 is biogenic (EPA: report separately from scope 1)"


def epa_override(table, key, default):
    new = EPA_OVERRIDES.get((table, key))
    if new:
        OVERRIDES_APPLIED[f"epa_hub: {default} -> {new}"] += 1
        return new
    return default


def gas_row(year, activity, source_id, region, name, category, scope,
            scope3, unit_type, unit, basis, co2, ch4, n2o, notes,
            gwp_set=None):
    """Row whose per-gas values are kg of each gas (gasBasis mass). The
    total is on the edition's GWP set unless one is given."""
    gwp_set = gwp_set or EPA_EDITION_GWP[year]
    if ch4 is None and n2o is None:
        co2e = co2
    else:
        co2e = gwp_total(co2, ch4, n2o, gwp_set)
    return make_row(
        activityId=activity, source=EPA_SOURCE, sourceId=source_id,
        year=year, region=region, name=name, category=category,
        scope=scope, scope3Category=scope3, unitType=unit_type, unit=unit,
        calorificBasis=basis, co2eKg=fmt(co2e), co2=fmt(co2), ch4=fmt(ch4),
        n2o=fmt(n2o), gasBasis="mass", gwpSet=gwp_set,
        notes="; ".join(n for n in notes if n))


def all_blank(rec, cols):
    return all(not (rec.get(c) or "").strip() for c in cols)


def check_year(rec, year, path):
    if rec["Year"].strip() != str(year):
        raise SystemExit(f"error: {path}: Year {rec['Year']!r} != {year}")


def epa_stationary(path, year):
    rows = read_csv(path)
    cols = ["Fuel Category", "Fuel Type", "CO2 Factor Energy",
            "CO2 Factor Energy Unit", "CH4 Factor Energy",
            "CH4 Factor Energy Unit", "N2O Factor Energy",
            "N2O Factor Energy Unit", "CO2 Factor", "CO2 Factor Unit",
            "CH4 Factor", "CH4 Factor Unit", "N2O Factor", "N2O Factor Unit",
            "Year"]
    need(cols, rows, path)
    out = []
    for rec in rows:
        check_year(rec, year, path)
        src_fuel = rec["Fuel Type"].strip()
        fcat = rec["Fuel Category"].strip()
        fuel = EPA_FUEL_ALIASES.get(src_fuel, src_fuel)
        if fcat == EPA_KRAFT_CATEGORY:
            name = f"Kraft pulping liquor ({fuel})"
        else:
            name = fuel
        base = f"epa-stationary_combustion-{slug(name)}"
        activity = epa_override("stationary", fuel, base)
        category = f"Stationary combustion > {fcat}"
        notes0 = [BIOGENIC_NOTE if fcat.startswith("Biomass") else ""]
        emitted = 0
        # per mmBtu (HHV = gross calorific value)
        if not all_blank(rec, ["CO2 Factor Energy", "CH4 Factor Energy",
                               "N2O Factor Energy"]):
            if (rec["CO2 Factor Energy Unit"] != "kg CO2 per mmBtu"
                    or rec["CH4 Factor Energy Unit"] not in
                    ("", "g CH4 per mmBtu")
                    or rec["N2O Factor Energy Unit"] != "g N2O per mmBtu"):
                raise SystemExit(f"error: {path}: unexpected energy units "
                                 f"for {src_fuel!r}")
            co2 = dec(rec["CO2 Factor Energy"], EPA_SOURCE)
            ch4 = g_to_kg(dec(rec["CH4 Factor Energy"], EPA_SOURCE))
            n2o = g_to_kg(dec(rec["N2O Factor Energy"], EPA_SOURCE))
            out.append(gas_row(year, activity, src_fuel, "US", name,
                               category, "1", "", "energy", "MMBtu",
                               "gross", co2, ch4, n2o,
                               notes0 + ["HHV basis"]))
            emitted += 1
        # per physical unit
        if not all_blank(rec, ["CO2 Factor", "CH4 Factor", "N2O Factor"]):
            unit_txt = rec["CO2 Factor Unit"].strip()
            m = re.fullmatch(r"kg CO2 per (.+)", unit_txt)
            if not m or m.group(1) not in EPA_PHYSICAL_UNITS:
                raise SystemExit(f"error: {path}: unit {unit_txt!r} not "
                                 f"mapped")
            per = m.group(1)
            if (rec["CH4 Factor Unit"].strip() != f"g CH4 per {per}"
                    or rec["N2O Factor Unit"].strip() != f"g N2O per {per}"):
                raise SystemExit(f"error: {path}: mixed units for "
                                 f"{src_fuel!r}")
            unit_type, unit = EPA_PHYSICAL_UNITS[per]
            co2 = dec(rec["CO2 Factor"], EPA_SOURCE)
            ch4 = g_to_kg(dec(rec["CH4 Factor"], EPA_SOURCE))
            n2o = g_to_kg(dec(rec["N2O Factor"], EPA_SOURCE))
            out.append(gas_row(year, activity, src_fuel, "US", name,
                               category, "1", "", unit_type, unit, "",
                               co2, ch4, n2o, notes0))
            emitted += 1
        if not emitted:
            SKIPPED[f"epa_hub {year}: stationary row without values"] += 1
    return out


def epa_mobile_co2(path, year):
    rows = read_csv(path)
    need(["Fuel Type", "kg CO2 per unit", "Unit", "Year"], rows, path)
    out = []
    for rec in rows:
        check_year(rec, year, path)
        fuel = rec["Fuel Type"].strip()
        if not rec["kg CO2 per unit"].strip():
            SKIPPED[f"epa_hub {year}: mobile CO2 row without value"] += 1
            continue
        unit_txt = rec["Unit"].strip()
        if unit_txt not in EPA_PHYSICAL_UNITS:
            raise SystemExit(f"error: {path}: unit {unit_txt!r} not mapped")
        unit_type, unit = EPA_PHYSICAL_UNITS[unit_txt]
        activity = epa_override("mobile_co2", fuel,
                                f"epa-mobile_combustion-{slug(fuel)}")
        notes = ["CO2 only; CH4 and N2O are per vehicle-mile factors"]
        if fuel.startswith(("Biodiesel", "Ethanol")):
            notes.append(BIOGENIC_NOTE)
        out.append(gas_row(year, activity, fuel, "US", fuel,
                           "Mobile combustion > CO2 by fuel", "1", "",
                           unit_type, unit, "",
                           dec(rec["kg CO2 per unit"], EPA_SOURCE), None,
                           None, notes))
    return out


def epa_mobile_ch4_n2o(path, year, table):
    rows = read_csv(path)
    header = HEADERS[path]
    ch4_cols = [c for c in header if c.startswith("CH4 Factor (g CH4 / ")]
    n2o_cols = [c for c in header if c.startswith("N2O Factor (g N2O / ")]
    need(["Vehicle Type", "Year"], rows, path)
    if len(ch4_cols) != 1 or len(n2o_cols) != 1:
        raise SystemExit(f"error: {path}: CH4/N2O columns not found")
    ch4_col, n2o_col = ch4_cols[0], n2o_cols[0]
    per = ch4_col[len("CH4 Factor (g CH4 / "):-1]
    if n2o_col != f"N2O Factor (g N2O / {per})":
        raise SystemExit(f"error: {path}: CH4 and N2O units differ")
    if per == "vehicle-mile":
        unit_type, unit = EPA_DISTANCE_UNITS[per]
    elif per == "gallon":
        unit_type, unit = EPA_PHYSICAL_UNITS[per]
    else:
        raise SystemExit(f"error: {path}: unit {per!r} not mapped")
    titles = {
        "on_road_gasoline": ("mobile_on_road_gasoline",
                             "Mobile combustion > On-road gasoline vehicles "
                             "(CH4, N2O)"),
        "on_road_diesel_alt": ("mobile_on_road_diesel_alt",
                               "Mobile combustion > On-road diesel and "
                               "alternative fuel vehicles (CH4, N2O)"),
        "non_road": ("mobile_non_road",
                     "Mobile combustion > Non-road vehicles (CH4, N2O)"),
    }
    table_slug, category = titles[table]
    out = []
    vehicle = None
    for rec in rows:
        check_year(rec, year, path)
        src_vehicle = rec["Vehicle Type"].strip()
        # The workbook prints "Gasoline Light-Duty Trucks" on one line and
        # "(Vans, Pickup Trucks, SUVs)" on the next; the extraction turned
        # the continuation line into its own vehicle type.
        if src_vehicle.startswith("("):
            if vehicle is None or not vehicle.startswith("Gasoline Light"):
                raise SystemExit(f"error: {path}: orphan continuation "
                                 f"{src_vehicle!r}")
        else:
            vehicle = src_vehicle
        if vehicle == "Gasoline Light-Duty Trucks":
            full_vehicle = "Gasoline Light-Duty Trucks (Vans, Pickup Trucks, " \
                           "SUVs)"
        else:
            full_vehicle = vehicle
        if all_blank(rec, [ch4_col, n2o_col]):
            SKIPPED[f"epa_hub {year}: mobile CH4/N2O row without values "
                    f"(extraction gap)"] += 1
            continue
        if all_blank(rec, [ch4_col]) or all_blank(rec, [n2o_col]):
            raise SystemExit(f"error: {path}: partial CH4/N2O for "
                             f"{src_vehicle!r}")
        fuel = (rec.get("Fuel Type") or "").strip()
        model_year = (rec.get("Model Year") or "").strip()
        parts = [full_vehicle] + ([fuel] if fuel else [])
        activity = "-".join(["epa", table_slug] + [slug(p) for p in parts] +
                            ([model_year] if model_year else []))
        source_id = " / ".join(parts + ([model_year] if model_year else []))
        name = ", ".join(parts)
        notes = []
        if model_year:
            notes.append(f"model year {model_year}")
        notes.append("CH4 and N2O only; add CO2 from the per-gallon fuel "
                     "factor (co2eKg = 28*ch4 + 265*n2o)")
        ch4 = g_to_kg(dec(rec[ch4_col], EPA_SOURCE))
        n2o = g_to_kg(dec(rec[n2o_col], EPA_SOURCE))
        out.append(gas_row(year, activity, source_id, "US", name, category,
                           "1", "", unit_type, unit, "", None, ch4, n2o,
                           notes))
    return out


def epa_electricity(path, year):
    rows = read_csv(path)
    kinds = {
        "Total Output": ("electricity-grid", "total output",
                         "eGRID total output emission rate"),
        "Non-Baseload": ("electricity-grid-non_baseload", "non-baseload",
                         "eGRID non-baseload rate: EPA says use it to "
                         "estimate avoided emissions, not for inventories"),
    }
    cols = ["eGRID Subregion Acronym", "eGRID Subregion Name", "Year"]
    for kind in kinds:
        for gas in ("CO2", "CH4", "N2O"):
            cols.append(f"{kind} {gas} Factor (lb {gas} / MWh)")
    need(cols, rows, path)
    out = []
    for rec in rows:
        check_year(rec, year, path)
        acr = rec["eGRID Subregion Acronym"].strip()
        sub_name = rec["eGRID Subregion Name"].strip()
        # 2023 spells the name as "AKGD (ASCC Alaska Grid)"
        m = re.fullmatch(re.escape(acr) + r" \((.+)\)", sub_name)
        if m:
            sub_name = m.group(1)
        if acr == "US Average":
            region, label = "US", "US average"
        elif re.fullmatch(r"[A-Z]{4}", acr):
            region, label = f"US-{acr}", f"eGRID {acr} ({sub_name})"
        else:
            raise SystemExit(f"error: {path}: unexpected subregion {acr!r}")
        for kind, (activity, kind_label, note) in kinds.items():
            gcols = [f"{kind} {g} Factor (lb {g} / MWh)"
                     for g in ("CO2", "CH4", "N2O")]
            if all_blank(rec, gcols):
                SKIPPED[f"epa_hub {year}: electricity without values"] += 1
                continue
            co2, ch4, n2o = (lb_to_kg(dec(rec[c], EPA_SOURCE))
                             for c in gcols)
            OVERRIDES_APPLIED[f"epa_hub: eGRID {kind_label} -> "
                              f"{activity}"] += 1
            notes = [note]
            if year == 2024:
                notes.append("eGRID2022")
            out.append(gas_row(year, activity, acr, region,
                               f"Electricity, {label}, {kind_label}",
                               f"Electricity > eGRID {kind_label}", "2", "",
                               "energy", "MWh", "", co2, ch4, n2o, notes))
    return out


def epa_steam(path, year):
    rows = read_csv(path)
    cols = ["Category", "CO2 Factor (kg CO2 / mmBtu)",
            "CH4 Factor (g CH4 / mmBtu)", "N2O Factor (g N2O / mmBtu)",
            "Year"]
    need(cols, rows, path)
    out = []
    for rec in rows:
        check_year(rec, year, path)
        cat = rec["Category"].strip()
        if all_blank(rec, cols[1:4]):
            SKIPPED[f"epa_hub {year}: steam and heat row without values "
                    f"(extraction gap)"] += 1
            continue
        co2 = dec(rec[cols[1]], EPA_SOURCE)
        ch4 = g_to_kg(dec(rec[cols[2]], EPA_SOURCE))
        n2o = g_to_kg(dec(rec[cols[3]], EPA_SOURCE))
        out.append(gas_row(year, f"epa-steam_and_heat-{slug(cat)}", cat,
                           "US", cat, "Steam and heat", "2", "", "energy",
                           "MMBtu", "", co2, ch4, n2o,
                           ["per mmBtu of purchased steam or heat"]))
    return out


def epa_scope3_transport(path, year, table):
    rows = read_csv(path)
    cols = ["Vehicle Type", "CO2 Factor (kg CO2 / unit)",
            "CH4 Factor (g CH4 / unit)", "N2O Factor (g N2O / unit)",
            "Units", "Year"]
    need(cols, rows, path)
    if table == "transport":
        table_slug = "transport_and_distribution"
        category = ("Upstream and downstream transportation and "
                    "distribution")
        scope3, extra = "4", "also applies to scope 3 category 9"
    else:
        table_slug = "business_travel"
        category = "Business travel and employee commuting"
        scope3, extra = "6", "also applies to scope 3 category 7"
    out = []
    for rec in rows:
        check_year(rec, year, path)
        src = rec["Vehicle Type"].strip()
        if all_blank(rec, cols[1:4]):
            SKIPPED[f"epa_hub {year}: scope 3 {table} row without values "
                    f"(extraction gap)"] += 1
            continue
        if any(not rec[c].strip() for c in cols[1:4]):
            raise SystemExit(f"error: {path}: partial gases for {src!r}")
        vehicle = EPA_FOOTNOTE_NAMES.get(src, src)
        units = rec["Units"].strip()
        if units not in EPA_DISTANCE_UNITS:
            raise SystemExit(f"error: {path}: unit {units!r} not mapped")
        unit_type, unit = EPA_DISTANCE_UNITS[units]
        co2 = dec(rec[cols[1]], EPA_SOURCE)
        ch4 = g_to_kg(dec(rec[cols[2]], EPA_SOURCE))
        n2o = g_to_kg(dec(rec[cols[3]], EPA_SOURCE))
        out.append(gas_row(year, f"epa-{table_slug}-{slug(vehicle)}", src,
                           "US", vehicle, category, "3", scope3, unit_type,
                           unit, "", co2, ch4, n2o,
                           [extra, "tank-to-wheel only"]))
    return out


WASTE_TREATMENTS = [
    ("Recycled (Metric Tons CO2e / Short Ton Material)", "Recycled"),
    ("Landfilled (Metric Tons CO2e / Short Ton Material)", "Landfilled"),
    ("Combusted (Metric Tons CO2e / Short Ton Material)", "Combusted"),
    ("Composted (Metric Tons CO2e / Short Ton Material)", "Composted"),
    ("Anaerobically Digested (Dry Digestate with Curing (Metric Tons CO2e /"
     " Short Ton Material))", "Anaerobically digested (dry digestate with "
     "curing)"),
    ("Anaerobically Digested (Wet  Digestate with Curing) (Metric Tons CO2e"
     " / Short Ton Material)", "Anaerobically digested (wet digestate with "
     "curing)"),
]


def epa_waste(path, year):
    rows = read_csv(path)
    need(["Material", "Year"] + [c for c, _ in WASTE_TREATMENTS], rows,
         path)
    out = []
    for rec in rows:
        check_year(rec, year, path)
        material = rec["Material"].strip()
        for col, treatment in WASTE_TREATMENTS:
            text = rec[col].strip()
            if not text:
                SKIPPED[f"epa_hub {year}: waste treatment not applicable "
                        f"(empty cell)"] += 1
                continue
            co2e = EXACT.multiply(dec(text, EPA_SOURCE), THOUSAND)
            notes = ["metric tons CO2e per short ton x 1000",
                     "EPA WARM; AR4 GWPs per EPA note",
                     "includes transport to the facility",
                     "also applies to scope 3 category 12"]
            out.append(make_row(
                activityId=f"epa-waste-{slug(material)}-{slug(treatment)}",
                source=EPA_SOURCE, sourceId=f"{material} / {treatment}",
                year=year, region="US", name=f"{material}, {treatment}",
                category="Waste generated in operations", scope="3",
                scope3Category="5", unitType="mass", unit="short_ton",
                co2eKg=fmt(co2e), gwpSet="AR4", notes="; ".join(notes)))
    return out


def epa_gwp(path, year):
    rows = read_csv(path)
    cols = ["Industrial Designation or Common Name", "Chemical Formula",
            "100-Year GWP", "Year"]
    need(cols, rows, path)
    out = []
    for rec in rows:
        check_year(rec, year, path)
        gas = rec[cols[0]].strip()
        formula = rec[cols[1]].strip()
        if all_blank(rec, cols[:3]):
            SKIPPED[f"epa_hub {year}: GWP row without values "
                    f"(extraction gap)"] += 1
            continue
        if formula in ("CO2", "CH4", "N2O"):
            if year == 2024 and {"CH4": "28", "N2O": "265", "CO2": "1"}[
                    formula] != rec[cols[2]].strip():
                raise SystemExit(f"error: {path}: {formula} GWP is not AR5")
            SKIPPED["epa_hub: GWP rows for CO2/CH4/N2O (gases, not "
                    "refrigerants)"] += 1
            continue
        gwp = dec(rec[cols[2]], EPA_SOURCE)
        out.append(make_row(
            activityId=f"epa-gwp-{slug(gas)}", source=EPA_SOURCE,
            sourceId=gas, year=year, region="US",
            name=f"{gas} ({formula})" if formula else gas,
            category="Refrigerants and other gases > 100-year GWP",
            scope="1", unitType="mass", unit="kg", co2eKg=fmt(gwp),
            gwpSet="AR5",
            notes="100-year GWP; kg CO2e per kg released"))
    return out


def epa_blends(path, year):
    rows = read_csv(path)
    cols = ["ASHRAE", "100-year GWP", "Year"]
    need(cols + ["Blend Composition"], rows, path)
    # The 2023 blend GWPs are AR4 (e.g. R-410A 2088 = 0.5*675 + 0.5*3500);
    # 2024 are AR5 (R-410A 1924 = 0.5*677 + 0.5*3170).
    gwp_set = {2023: "AR4", 2024: "AR5"}[year]
    out = []
    for rec in rows:
        check_year(rec, year, path)
        src = rec["ASHRAE"].strip()
        if not rec["100-year GWP"].strip():
            SKIPPED[f"epa_hub {year}: blend without GWP"] += 1
            continue
        blend = EPA_BLEND_ALIASES.get(src, src)
        notes = ["100-year GWP of the HFC and PFC constituents only "
                 "(EPA excludes ODS such as HCFCs)",
                 "kg CO2e per kg released"]
        if blend != src:
            notes.append(f"{src} is the former name of {blend}")
        out.append(make_row(
            activityId=f"epa-gwp_blended_refrigerants-{slug(blend)}",
            source=EPA_SOURCE, sourceId=src, year=year, region="US",
            name=src, category="Refrigerants and other gases > Blended "
            "refrigerants", scope="1", unitType="mass", unit="kg",
            co2eKg=fmt(dec(rec["100-year GWP"], EPA_SOURCE)),
            gwpSet=gwp_set, notes="; ".join(notes)))
    return out


def epa_rows(data_dir):
    out = []
    for year in EPA_YEARS:
        p = {k: data_dir / EPA_DIR / f"epa_hub_{year}_{v}"
             for k, v in EPA_TABLES.items()}
        out += epa_stationary(p["stationary"], year)
        out += epa_mobile_co2(p["mobile_co2"], year)
        for table in ("on_road_gasoline", "on_road_diesel_alt", "non_road"):
            out += epa_mobile_ch4_n2o(p[table], year, table)
        out += epa_electricity(p["electricity"], year)
        out += epa_steam(p["steam"], year)
        out += epa_scope3_transport(p["transport"], year, "transport")
        out += epa_scope3_transport(p["travel"], year, "travel")
        out += epa_waste(p["waste"], year)
        out += epa_gwp(p["gwp"], year)
        out += epa_blends(p["blends"], year)
    return out


# --------------------------------------------------------------------------
# USEEIO supply chain factors v1.2
# --------------------------------------------------------------------------

def useeio_rows(data_dir):
    path = data_dir / USEEIO_FILE
    rows = read_csv(path)
    cols = ["NAICS Code 2017", "NAICS Title 2017", "GHG", "Unit",
            "Supply Chain Emission Factors with Margins"]
    need(cols, rows, path)
    out = []
    for rec in rows:
        code = rec["NAICS Code 2017"].strip()
        if not re.fullmatch(r"\d{6}", code):
            raise SystemExit(f"error: {path}: NAICS code {code!r}")
        if rec["GHG"].strip() != "All GHGs" or rec["Unit"].strip() != \
                "kg CO2e/2021 USD, purchaser price":
            raise SystemExit(f"error: {path}: unexpected GHG/Unit for {code}")
        out.append(make_row(
            activityId=f"useeio-naics_{code}", source="useeio",
            sourceId=code, year=2021, region="US",
            name=rec["NAICS Title 2017"].strip(),
            category="Supply chain (spend-based)", scope="3",
            scope3Category="1", unitType="money", unit="USD",
            co2eKg=fmt(dec(rec["Supply Chain Emission Factors with Margins"],
                           "useeio")),
            gwpSet="AR4",
            notes="with margins (purchaser price), kg CO2e per 2021 USD; "
                  "year is the USD basis (GHG data 2019); AR4 GWPs"))
    return out


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def required_inputs(data_dir):
    paths = [data_dir / DESNZ_FILE, data_dir / USEEIO_FILE]
    for year in EPA_YEARS:
        paths += [data_dir / EPA_DIR / f"epa_hub_{year}_{v}"
                  for v in EPA_TABLES.values()]
    return paths


def key_of(row):
    return (row["source"], row["year"], row["region"], row["activityId"],
            row["unit"], row["calorificBasis"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"raw data folder (default: {DEFAULT_DATA})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output CSV (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    data_dir = args.data
    for path in [data_dir] + required_inputs(data_dir):
        if not path.exists():
            print(f"error: missing {path} -- build_factors.py is a "
                  f"maintainer command that needs the handbook's shared/data "
                  f"folder (pass --data DIR); the test suite does not need "
                  f"it", file=sys.stderr)
            return 2

    rows = desnz_rows(data_dir) + epa_rows(data_dir) + useeio_rows(data_dir)

    # ids and uniqueness
    seen_keys = {}
    seen_ids = {}
    for row in rows:
        if not re.fullmatch(r"[a-z0-9_-]+", row["activityId"]):
            raise SystemExit(f"error: bad activityId {row['activityId']!r}")
        key = key_of(row)
        if key in seen_keys:
            raise SystemExit(f"error: duplicate key {key}: "
                             f"{seen_keys[key]} / {row['sourceId']}")
        seen_keys[key] = row["sourceId"]
        notes_key = ""
        material = "|".join([row["source"], row["year"], row["region"],
                             row["activityId"], row["unit"],
                             row["calorificBasis"], notes_key])
        row["id"] = "ef_" + hashlib.sha256(
            material.encode("utf-8")).hexdigest()[:16]
        if row["id"] in seen_ids:
            raise SystemExit(f"error: id collision {row['id']}")
        seen_ids[row["id"]] = key

    rows.sort(key=lambda r: (r["source"], int(r["year"]), r["activityId"],
                             r["region"], r["unit"], r["calorificBasis"]))

    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
    tmp.replace(out)

    # summary
    err = sys.stderr
    print(f"wrote {len(rows)} rows to {out}", file=err)
    per = Counter((r["source"], r["year"]) for r in rows)
    for (source, year), n in sorted(per.items()):
        print(f"  {source:8} {year}: {n}", file=err)
    print("skipped:", file=err)
    for reason, n in sorted(SKIPPED.items()):
        print(f"  {n:5}  {reason}", file=err)
    print("activityId overrides:", file=err)
    for text, n in sorted(OVERRIDES_APPLIED.items()):
        print(f"  {n:5}  {text}", file=err)
    print("inputs rounded to 15 significant digits: " +
          ", ".join(f"{k} {v}" for k, v in sorted(ROUNDED_INPUTS.items())),
          file=err)
    c = DESNZ_SUM_CHECK
    print(f"DESNZ co2+ch4+n2o vs kg CO2e: {c['groups']} groups, "
          f"{c['exact']} exact, {c['within_1e-12']} within 1e-12 relative, "
          f"{len(c['differ'])} differ more (largest relative difference "
          f"{c['max_rel']:.2E})", file=err)
    for source_id, total, s, rel in c["differ"]:
        print(f"    {source_id}: total {total}, sum {s}, rel {rel}",
              file=err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
